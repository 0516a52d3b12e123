"""Time for pacing: a monotonic clock whose scale is the emulator's speed factor.

A stream computes its deadlines once (``t0 + n * 20 ms / speed``) and sleeps until each one, so a
late wake-up never shifts the frames after it. ``speed == 0`` means "as fast as the socket takes
frames": deadlines are all in the past and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    speed: float

    def monotonic(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...

    def media_deadline(self, t0: float, media_seconds: float) -> float: ...


class RealClock:
    """Wall-clock pacing, scaled by ``speed`` (1 = real time, 2 = twice as fast, 0 = no pacing)."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed

    def monotonic(self) -> float:
        return time.monotonic()

    def media_deadline(self, t0: float, media_seconds: float) -> float:
        """When the audio at ``media_seconds`` into a stream started at ``t0`` is due."""
        if self.speed == 0:
            return t0
        return t0 + media_seconds / self.speed

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
