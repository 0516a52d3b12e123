"""A timer set while a call's media sleeps through quiet ticks (nobody listening) counts from the present tick,
not from the tick the sleep began at; a fake clock drives the runner, so nothing waits for real time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from emulator.media.call_runner import CallRunner
from emulator.media.engine import CallMedia
from emulator.media.library import build_stream_media
from emulator.scenarios.loader import parse_scenario
from tests.unit.fake_clock import FakeClock, settle


class Call:
    media_ticks = 0


class Observer:
    def __init__(self, call: Call) -> None:
        self.call = call
        self.cues: list[tuple[int, object]] = []

    def cue_due(self, runner, cue):
        self.cues.append((self.call.media_ticks, cue))

    def __getattr__(self, name):  # every other event of the call's media is of no interest here
        return lambda *args: None


def test_a_timer_set_four_seconds_into_a_quiet_sleep_fires_a_second_later_on_the_call():
    async def scenario() -> list[tuple[int, object]]:
        parsed = parse_scenario("at_end: stay\ninbound:\n  - silence: {ms: 10000}\n", "t.yaml", Path("."))
        engine = CallMedia(build_stream_media(parsed, "PCMU"), at_end="stay")
        clock, call = FakeClock(), Call()
        observer = Observer(call)
        runner = CallRunner(call, engine, clock, observer)  # type: ignore[arg-type]
        task = asyncio.create_task(runner.run())
        await settle()  # asleep through the 500 quiet ticks of the silence
        clock.now = 4.0  # 200 ticks later, the app sets a timer of one second
        runner.catch_up()
        engine.add_timer(1000, "one second")
        runner.poke()
        await settle()
        clock.advance_to(5.0)
        await settle()
        runner.stop()
        clock.advance_to(100.0)
        await asyncio.wait_for(task, 1)
        return observer.cues

    ((tick, cue),) = asyncio.run(scenario())
    assert cue == "one second" and 249 <= tick <= 252  # 200 ticks slept, then 50 more: not at tick 50
