"""ISO 8601 UTC timestamps with microseconds and ``Z``, as Telnyx writes them: ``2021-12-15T14:06:32.059436Z``.

Formatted on every request (the command context) and every webhook: the date and time of day are
formatted once per second and reused, which makes this about three times cheaper than a datetime.
"""

from __future__ import annotations

import time


class _SecondCache:
    second = -1
    prefix = ""


def iso_utc(unix: float) -> str:
    """``unix`` seconds as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    second = int(unix // 1)
    if second != _SecondCache.second:
        _SecondCache.prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _SecondCache.second = second
    return f"{_SecondCache.prefix}{min(int((unix - second) * 1_000_000), 999_999):06d}Z"


def utc_now() -> str:
    return iso_utc(time.time())


# The wall clock at monotonic zero. Times kept on the monotonic clock (a call's history) are shown as UTC with it,
# so one moment reads the same in every answer (an offset read afresh each time moves by µs). It is read again
# when it has moved by more than a second: the machine slept (the monotonic clock stood still) or the wall clock
# was set, and from then on new times read right.
_offset = [time.time() - time.monotonic()]


def iso_utc_of_monotonic(seconds: float) -> str:
    """``time.monotonic()`` seconds as UTC, like ``iso_utc``."""
    current = time.time() - time.monotonic()
    if abs(current - _offset[0]) > 1.0:
        _offset[0] = current
    return iso_utc(seconds + _offset[0])
