"""Time for pacing: a monotonic clock scaled by the speed factor, and a shared precise ticker.

A stream computes its deadlines once (``t0 + n * 20 ms / speed``) and waits until each one, so a
late wake-up never shifts the frames after it. ``speed == 0`` means "as fast as the socket takes
frames": nothing waits.

Why a ticker: asyncio's epoll selector rounds every timeout *up* to a whole millisecond, and
uvicorn's 100 ms housekeeping timer splits waits in two, so a plain ``asyncio.sleep`` wakes up to
~2 ms late. The ticker asks the loop to wake it ``_EARLY`` seconds before a deadline and sleeps the
rest with ``time.sleep`` (nanosecond resolution, no busy loop). Stream starts are aligned to a
shared grid of frame periods, so however many streams run, the ticker fires once per period and the
short blocking sleep is paid once, not once per stream.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from typing import Protocol

FRAME_SECONDS = 0.020
# How early the event loop is asked to wake the ticker: two epoll roundings of up to 1 ms each.
_EARLY = 0.0025


class Clock(Protocol):
    speed: float

    def monotonic(self) -> float: ...

    def media_deadline(self, t0: float, media_seconds: float) -> float: ...

    def aligned_start(self) -> float: ...

    def wake_at(self, deadline: float) -> asyncio.Future[None]: ...


class Ticker:
    """Resolves futures at their deadlines (``time.monotonic`` seconds), sharing one loop timer."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (deadline, next(self._order), future))
        self._arm(loop)
        return future

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._heap:
            return
        wake = self._heap[0][0] - _EARLY
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
            remaining = heap[0][0] - time.monotonic()
            if remaining > _EARLY:  # woken early by a re-arm race: wait again
                self._arm(loop)
                return
            if remaining > 0:
                time.sleep(remaining)
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                _, _, future = heapq.heappop(heap)
                if not future.done():
                    future.set_result(None)
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
        """The next instant on the shared grid of frame periods (at most one period from now)."""
        now = time.monotonic()
        if self.speed == 0:
            return now
        period = FRAME_SECONDS / self.speed
        return math.ceil(now / period) * period

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        """A future resolved at ``deadline``; resolving it earlier (to interrupt the wait) is allowed."""
        return self._ticker.wake_at(deadline)
