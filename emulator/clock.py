"""Time for pacing: a monotonic clock scaled by the speed factor, and a shared precise ticker.

A stream computes its deadlines once (``t0 + n * 20 ms / speed``) and waits until each one, so a
late wake-up never shifts the frames after it. ``speed == 0`` means "as fast as the socket takes
frames": nothing waits.

Why a ticker: asyncio's epoll selector rounds every timeout *up* to a whole millisecond, and
uvicorn's 100 ms housekeeping timer splits waits in two, so a plain ``asyncio.sleep`` wakes up to
~2 ms late. The ticker asks the loop to wake it ``_EARLY`` seconds before a deadline and sleeps the
rest with ``time.sleep`` (nanosecond resolution, no busy loop). Futures due at the same instant share
one heap entry, and stream starts are aligned to a shared grid of ``_SLOTS`` slots per frame period,
so however many streams run, the ticker fires at most ``_SLOTS`` times per period and the short
blocking sleep is paid once per slot, not once per stream.

Why slots rather than one grid point per period: with every stream due at the same instant, the
streams' frames leave one after another, and with 1000 streams (a ``send`` syscall and ~10 us of
Python each) the last one leaves ~15-20 ms after its deadline. Spread over 20 slots, each slot holds
1/20 of the streams and its frames are out within about a millisecond (docs/performance-history.md).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable
from typing import Protocol

from emulator.timing import FRAME_SECONDS

# How early the event loop is asked to wake the ticker: two epoll roundings of up to 1 ms each.
_EARLY = 0.0025
# Stream starts per frame period: a stream starts at most FRAME_SECONDS / _SLOTS (1 ms) after it is asked to.
_SLOTS = 20


class Clock(Protocol):
    speed: float

    def monotonic(self) -> float: ...

    def media_deadline(self, t0: float, media_seconds: float) -> float: ...

    def aligned_start(self) -> float: ...

    def wake_at(self, deadline: float) -> asyncio.Future[None]: ...

    def call_at(self, deadline: float, callback: Callable[[], None]) -> None: ...


Due = asyncio.Future[None] | Callable[[], None]


class Ticker:
    """Resolves futures, and calls callbacks, at their deadlines (``time.monotonic`` seconds), sharing one loop
    timer. A callback costs no task wake-up: the call runners' steady ticks are callbacks (media/call_runner.py)."""

    def __init__(self) -> None:
        self._heap: list[float] = []  # distinct deadlines
        self._due: dict[float, list[Due]] = {}  # deadline -> its futures and callbacks, in arrival order
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_at(deadline, future)
        return future

    def call_at(self, deadline: float, due: Due) -> None:
        """Resolve the future, or call the callback (in the loop's thread, from the ticker's timer), at ``deadline``."""
        waiting = self._due.get(deadline)
        if waiting is not None:  # the common case with many streams: one heap entry per slot
            waiting.append(due)
            return
        self._due[deadline] = [due]
        heapq.heappush(self._heap, deadline)
        self._arm(asyncio.get_running_loop())

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._heap:
            return
        wake = self._heap[0] - _EARLY
        if self._timer is not None:
            if self._timer_at <= wake:
                return
            self._timer.cancel()
        self._timer_at = wake
        # call_later, not call_at: deadlines are time.monotonic() values, and loop.time() need not be
        # the same clock (uvloop's is libuv's millisecond clock).
        self._timer = loop.call_later(max(0.0, wake - time.monotonic()), self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        heap = self._heap
        if heap:
            remaining = heap[0] - time.monotonic()
            if remaining > _EARLY:  # woken early by a re-arm race: wait again
                self._arm(loop)
                return
            if remaining > 0:
                time.sleep(remaining)
            now = time.monotonic()
            while heap and heap[0] <= now:
                for due in self._due.pop(heapq.heappop(heap)):
                    if isinstance(due, asyncio.Future):
                        if not due.done():
                            due.set_result(None)
                        continue
                    try:
                        due()
                    except Exception as exc:  # one failing callback must not stop the others' ticks
                        loop.call_exception_handler({"message": "ticker callback failed", "exception": exc})
        self._arm(loop)


class RealClock:
    """Wall-clock pacing, scaled by ``speed`` (1 = real time, 2 = twice as fast, 0 = no pacing)."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._ticker = Ticker()

    def monotonic(self) -> float:
        return time.monotonic()

    def media_deadline(self, t0: float, media_seconds: float) -> float:
        """When the audio at ``media_seconds`` into a stream started at ``t0`` is due."""
        if self.speed == 0:
            return t0
        return t0 + media_seconds / self.speed

    def aligned_start(self) -> float:
        """The next instant on the shared grid of slots (at most 1/_SLOTS of a frame period from now)."""
        now = time.monotonic()
        if self.speed == 0:
            return now
        slot = FRAME_SECONDS / self.speed / _SLOTS
        return math.ceil(now / slot) * slot

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        """A future resolved at ``deadline``; resolving it earlier (to interrupt the wait) is allowed."""
        return self._ticker.wake_at(deadline)

    def call_at(self, deadline: float, callback: Callable[[], None]) -> None:
        """``callback()`` at ``deadline``, from the ticker's own timer: no task is woken for it."""
        self._ticker.call_at(deadline, callback)
