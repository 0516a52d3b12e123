"""A clock for driving a call's runner by hand: time moves only when a test says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FakeClock:
    speed = 1.0

    def __init__(self) -> None:
        self.now = 0.0
        self.waiting: list[tuple[float, asyncio.Future[None]]] = []
        self.callbacks = 0  # ticks handed to call_at: the runner's steady state

    def monotonic(self) -> float:
        return self.now

    def media_deadline(self, t0: float, media_seconds: float) -> float:
        return t0 + media_seconds

    def aligned_start(self) -> float:
        return self.now

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((deadline, future))
        return future

    def call_at(self, deadline: float, callback: Callable[[], None]) -> None:
        self.callbacks += 1
        self.wake_at(deadline).add_done_callback(lambda _: callback())

    def advance_to(self, when: float) -> None:
        self.now = when
        for deadline, future in self.waiting:
            if deadline <= when and not future.done():
                future.set_result(None)
        self.waiting = [(deadline, future) for deadline, future in self.waiting if not future.done()]


async def settle() -> None:
    """Let every callback and task that is ready run."""
    for _ in range(20):
        await asyncio.sleep(0)
