"""The pacing clock: deadlines on an absolute schedule, stream starts on a shared grid, and the ticker
that wakes streams at their deadlines (never before)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from emulator.clock import FRAME_SECONDS, RealClock, Ticker

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("speed", [1, 2.5, 10])
def test_deadlines_are_computed_from_the_start_never_from_the_previous_frame(speed):
    clock = RealClock(speed)
    t0 = 1000.0
    deadlines = [clock.media_deadline(t0, n * FRAME_SECONDS) for n in range(3001)]
    # Frame n is due n periods after t0, whatever happened to the frames before it: no accumulation.
    assert deadlines[3000] == pytest.approx(t0 + 3000 * FRAME_SECONDS / speed, abs=1e-9)
    assert all(b > a for a, b in zip(deadlines, deadlines[1:], strict=False))


def test_at_speed_zero_every_frame_is_due_at_once():
    clock = RealClock(0)
    assert clock.media_deadline(5.0, 60.0) == 5.0
    before = time.monotonic()
    assert before <= clock.aligned_start() <= time.monotonic()


def test_stream_starts_land_on_a_shared_one_millisecond_grid():
    clock = RealClock(1)
    before = time.monotonic()
    start = clock.aligned_start()
    after = time.monotonic()
    assert before <= start <= after + 0.001 + 1e-9
    slots = start / 0.001
    assert math.isclose(slots, round(slots), abs_tol=1e-6)


async def test_the_ticker_wakes_each_future_at_or_after_its_deadline_in_order():
    ticker = Ticker()
    now = time.monotonic()
    deadlines = [now + 0.015, now + 0.005, now + 0.010, now + 0.010]
    woken: list[tuple[float, float]] = []

    async def wait(deadline: float) -> None:
        await ticker.wake_at(deadline)
        woken.append((deadline, time.monotonic()))

    async with asyncio.timeout(5):
        await asyncio.gather(*(wait(d) for d in deadlines))
    assert [d for d, _ in woken] == sorted(deadlines)
    assert all(at >= deadline for deadline, at in woken)  # never early


async def test_a_deadline_already_past_resolves_at_once():
    ticker = Ticker()
    async with asyncio.timeout(1):
        await ticker.wake_at(time.monotonic() - 1)


async def test_callbacks_run_at_their_deadlines_and_one_that_fails_does_not_stop_the_others():
    ticker = Ticker()
    loop = asyncio.get_running_loop()
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
    now = time.monotonic()
    called: list[tuple[str, float]] = []
    done = loop.create_future()

    def failing() -> None:
        raise RuntimeError("a broken tick")

    ticker.call_at(now + 0.010, lambda: called.append(("second", time.monotonic())))
    ticker.call_at(now + 0.005, failing)
    ticker.call_at(now + 0.005, lambda: called.append(("first", time.monotonic())))
    ticker.call_at(now + 0.015, lambda: done.set_result(None))
    try:
        async with asyncio.timeout(5):
            await done
    finally:
        loop.set_exception_handler(None)
    assert [name for name, _ in called] == ["first", "second"]
    assert called[0][1] >= now + 0.005 and called[1][1] >= now + 0.010  # never early
    assert [str(exc) for exc in reported] == ["a broken tick"]
