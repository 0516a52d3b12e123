"""The steady state of a call's media: with a stream listening, the clock's ticker runs each tick as a callback,
on the absolute schedule, and the runner's task wakes only when a tick needs it (a slow target, a stop, an
error). A fake clock drives it, so nothing waits for real time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from emulator.media.call_runner import CallRunner
from emulator.media.engine import CallMedia
from emulator.media.library import build_stream_media
from emulator.media.ticks import MediaTick
from emulator.scenarios.loader import parse_scenario
from tests.unit.fake_clock import FakeClock, settle

pytestmark = pytest.mark.anyio


class Call:
    media_ticks = 0


class Observer:
    def __init__(self) -> None:
        self.ended: list[object] = []

    def caller_done(self, runner, end):
        self.ended.append(end)

    def __getattr__(self, name):  # the call's other events are of no interest here
        return lambda *args: None


class Listener:
    races = True

    def __init__(self, stream_id: str = "s1", *, slow_at: int | None = None, fail_at: int | None = None) -> None:
        self.stream_id = stream_id
        self.pending: object | None = None
        self.heard: list[tuple[int, float]] = []  # (tick number, lateness)
        self.flushed: list[int] = []
        self._slow_at, self._fail_at = slow_at, fail_at

    def deliver(self, tick: MediaTick, lateness: float) -> bool:
        if tick.number == self._fail_at:
            raise RuntimeError("the encoder broke")
        self.heard.append((tick.number, round(lateness, 6)))
        if tick.number == self._slow_at:
            self.pending = tick.number  # the target's buffer is full: the runner must await flush()
        return True

    async def flush(self) -> bool:
        self.flushed.append(self.pending)  # type: ignore[arg-type]
        self.pending = None
        await asyncio.sleep(0)
        return True


def runner_for(clock: FakeClock, listener: Listener, seconds: int = 10) -> tuple[CallRunner, Call, Observer]:
    parsed = parse_scenario(f"inbound:\n  - tone: {{frequency: 440, ms: {seconds * 1000}}}\n", "t.yaml", Path("."))
    engine = CallMedia(build_stream_media(parsed, "PCMU"), at_end="hangup")
    call, observer = Call(), Observer()
    runner = CallRunner(call, engine, clock, observer)  # type: ignore[arg-type]
    runner.attach(listener)
    return runner, call, observer


async def test_the_ticker_runs_the_ticks_on_the_absolute_schedule_without_waking_the_task():
    clock, listener = FakeClock(), Listener()
    runner, call, _ = runner_for(clock, listener)
    task = asyncio.create_task(runner.run())
    await settle()
    assert listener.heard == [(0, 0.0)]  # tick 0 is due at once
    clock.advance_to(0.1)  # woken 80 ms late for tick 1: ticks 2-5 are due too, and run at once
    await settle()
    assert [n for n, _ in listener.heard] == [0, 1, 2, 3, 4, 5] and call.media_ticks == 6
    assert [late for _, late in listener.heard][1:] == [0.08, 0.06, 0.04, 0.02, 0.0]
    clock.advance_to(0.12)
    await settle()
    assert listener.heard[-1] == (6, 0.0)  # the schedule did not shift: tick 6 is due at 120 ms
    assert clock.callbacks == 3 and not task.done()  # one callback per wake-up; the task slept through them all
    assert len(clock.waiting) == 1  # the next tick's, and nothing else
    runner.stop()
    await asyncio.wait_for(task, 1)


async def test_a_slow_target_is_awaited_by_the_task_and_the_ticks_go_on_after_it():
    clock, listener = FakeClock(), Listener(slow_at=2)
    runner, call, _ = runner_for(clock, listener)
    task = asyncio.create_task(runner.run())
    for n in range(1, 6):
        await settle()
        clock.advance_to(n * 0.02)
    await settle()
    assert listener.flushed == [2]
    assert [n for n, _ in listener.heard] == [0, 1, 2, 3, 4, 5] and call.media_ticks == 6
    runner.stop()
    await asyncio.wait_for(task, 1)


async def test_a_stop_ends_the_run_at_once_and_the_tick_already_scheduled_does_nothing():
    clock, listener = FakeClock(), Listener()
    runner, _, _ = runner_for(clock, listener)
    task = asyncio.create_task(runner.run())
    await settle()
    runner.stop()
    await asyncio.wait_for(task, 1)
    clock.advance_to(1.0)  # the callback for tick 1 fires now: the ride it belonged to is over
    await settle()
    assert listener.heard == [(0, 0.0)]


async def test_an_error_in_a_tick_is_raised_by_the_runners_task():
    clock, listener = FakeClock(), Listener(fail_at=3)
    runner, _, _ = runner_for(clock, listener)
    task = asyncio.create_task(runner.run())
    await settle()
    clock.advance_to(0.1)
    with pytest.raises(RuntimeError, match="the encoder broke"):
        await asyncio.wait_for(task, 1)


async def test_the_callers_hangup_ends_the_run_from_a_ticker_callback():
    clock, listener = FakeClock(), Listener()
    runner, _, observer = runner_for(clock, listener, seconds=1)
    task = asyncio.create_task(runner.run())
    await settle()
    clock.advance_to(2.0)  # the second of tone and the hangup after it, all due
    await asyncio.wait_for(task, 1)
    assert [end.reason for end in observer.ended] == ["completed"]  # type: ignore[attr-defined]
    assert len(listener.heard) == 51  # 50 ticks of tone, then the one its end is in (a stream sends no media in it)
