"""The load plan: when calls start (rate, ramp), how many may be up (concurrency, ramp), the scenario mix."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from emulator.load.plan import DEFAULT_CALLS, LoadPlan, PlanError, ScenarioMix


def test_a_rate_without_ramp_starts_calls_evenly():
    plan = LoadPlan(calls=5, rate=4)
    assert [plan.start_time(k) for k in range(5)] == [0, 0.25, 0.5, 0.75, 1.0]
    assert plan.concurrency_at(0) is None and plan.arrivals == "rate 4/s"


def test_a_ramped_rate_grows_linearly_then_holds():
    plan = LoadPlan(calls=100, rate=10, ramp_s=4)  # 20 calls start during the ramp, then 10 a second
    times = [plan.start_time(k) for k in range(60)]
    assert times == sorted(times) and times[0] == 0
    assert sum(1 for t in times if t < 4) == 20
    assert plan.start_time(20) == pytest.approx(4) and plan.start_time(30) == pytest.approx(5)
    assert 1.0 / (times[2] - times[1]) < 10  # slower than the full rate at first
    assert times[41] - times[40] == pytest.approx(0.1)


def test_concurrency_ramps_up_from_one():
    plan = LoadPlan(calls=100, concurrency=50, ramp_s=10)
    assert plan.concurrency_at(0) == 1
    assert plan.concurrency_at(5) == 25
    assert plan.concurrency_at(10) == plan.concurrency_at(60) == 50
    assert plan.start_time(99) == 0  # no rate: each call starts as soon as there is room


def test_the_run_ends_at_its_call_count_or_its_duration():
    assert LoadPlan(calls=3).may_start(2, 1e9) and not LoadPlan(calls=3).may_start(3, 0)
    timed = LoadPlan(duration_s=10, rate=1)
    assert timed.calls is None and timed.may_start(10**6, 9.9) and not timed.may_start(0, 10)


def test_defaults_and_bad_values():
    plan = LoadPlan()
    assert plan.calls == DEFAULT_CALLS and plan.concurrency == DEFAULT_CALLS
    assert LoadPlan(calls=3).concurrency == 3
    assert LoadPlan(rate=2, concurrency=5).arrivals == "rate 2/s, at most 5 up"
    bad_values = ({"calls": 0}, {"rate": 0}, {"concurrency": 0}, {"ramp_s": -1}, {"duration_s": 0}, {"rate": 1e999})
    for bad in bad_values:
        with pytest.raises(PlanError):
            LoadPlan(**bad)


def test_a_weighted_mix_is_drawn_in_its_proportions_and_replays_from_its_seed():
    mix = ScenarioMix.parse(["ivr-menu:3", "default:1", "/tmp/a:b.yaml"])
    assert mix.names == ("ivr-menu", "default", "/tmp/a:b.yaml") and mix.weights == (3, 1, 1)
    first, again = random.Random(7), random.Random(7)
    assert [mix.pick(first) for _ in range(50)] == [mix.pick(again) for _ in range(50)]
    rng = random.Random(1)
    counts = Counter(mix.pick(rng) for _ in range(5000))
    assert 0.55 < counts["ivr-menu"] / 5000 < 0.65 and 0.15 < counts["default"] / 5000 < 0.25
    assert mix.shares() == {"ivr-menu": 0.6, "default": 0.2, "/tmp/a:b.yaml": 0.2}
    assert ScenarioMix.parse([]).pick(rng) is None and ScenarioMix.parse([]).shares() == {"default": 1.0}
    for bad in (["x:0"], ["x:-1"], ["x:nan"], [""]):
        with pytest.raises(PlanError):
            ScenarioMix.parse(bad)


def test_each_call_has_its_own_caller_number():
    plan = LoadPlan()
    assert plan.caller_number("+13125559000", 0) == "+13125559000"
    assert plan.caller_number("+13125559000", 42) == "+13125559042"
    assert plan.caller_number("+19999999999", 1) == "+20000000000"  # as many digits
