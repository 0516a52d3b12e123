"""FaultBook (pure): which rules fire on an occasion, how their counts move, and the random streams they draw from."""

from __future__ import annotations

from dataclasses import dataclass

from emulator.faults.rules import FaultBook


@dataclass
class Scenario:
    faults: tuple[dict, ...] = ()


def test_rules_fire_always_every_nth_or_n_times_and_spent_rules_leave_the_target():
    book = FaultBook.seeded(1)
    book.add({"target": "api", "kind": "status", "status": 503, "every": 3})
    book.add({"target": "media", "kind": "loss", "times": 2})
    fired = [bool(book.fire("api", exclusive=("status",), action="speak")) for _ in range(9)]
    assert fired == [False, False, True] * 3
    assert [bool(book.fire("media", stream_id="s")) for _ in range(4)] == [True, True, False, False]
    assert book.has("api") and not book.has("media") and not book.has("webhooks")  # cheap per frame: spent is out


def test_one_rule_of_a_kind_acts_on_an_occasion_but_delays_add_up():
    book = FaultBook.seeded(1)
    first = book.add({"target": "webhooks", "kind": "duplicate"})
    second = book.add({"target": "webhooks", "kind": "duplicate"})
    delays = [book.add({"target": "webhooks", "kind": "delay", "delay_ms": ms}) for ms in (100, 200)]
    fired = book.fire("webhooks", event_type="call.answered", call_control_id="c")
    assert fired == [first, *delays]
    assert (second.matched, second.fired) == (0, 0)  # not asked: that occasion does not count toward it


def test_exclusive_kinds_answer_once_and_the_later_ones_are_not_asked():
    book = FaultBook.seeded(1)
    status = book.add({"target": "api", "kind": "status", "status": 503})
    dropped = book.add({"target": "api", "kind": "drop_effect"})
    delay = book.add({"target": "api", "kind": "delay", "delay_ms": 10})
    assert book.fire("api", None, ("status", "drop_effect"), action="hangup") == [status, delay]
    assert dropped.matched == 0


def test_the_random_streams_replay_from_the_seed_whatever_else_drew_in_between():
    def run(interleave: bool) -> list[bool]:
        book = FaultBook.seeded(42)
        book.add({"target": "webhooks", "kind": "duplicate", "probability": 0.5})
        book.add({"target": "media", "kind": "loss", "probability": 0.5})
        out = []
        for _ in range(30):
            if interleave:  # another stream's frames asked in between do not change what webhooks draw
                book.fire("media", rng=book.new_random("media:other"), stream_id="other")
            out.append(bool(book.fire("webhooks", event_type="call.answered")))
        return out

    assert run(False) == run(True) and True in run(False) and False in run(False)


def test_reseed_restarts_counts_and_streams_and_clear_starts_ids_over():
    book = FaultBook.seeded(7)
    rule = book.add({"target": "api", "kind": "status", "status": 500, "times": 1})
    assert book.fire("api", action="speak") == [rule] and not book.has("api")
    book.reseed(7)
    assert (rule.matched, rule.fired) == (0, 0) and book.has("api")
    book.clear()
    assert book.add({"target": "api", "kind": "delay", "delay_ms": 5}).id == "flt_1"


def test_a_scenarios_rules_join_once_it_is_loaded_and_match_its_calls_and_the_default():
    scenarios: dict[str, Scenario] = {"default": Scenario(({"target": "api", "kind": "status", "status": 503},))}
    book = FaultBook.seeded(1)
    book.scenarios, book.default_scenario = scenarios, "default"
    assert book.has("api")  # joined on the first question
    (rule,) = book.rules
    assert rule.matchers == {"scenario": "default"} and rule.source == "scenario:default"
    assert book.fire("api", action="speak", scenario=None) == [rule]  # no scenario: the default's
    assert book.fire("api", action="speak", scenario="ivr-menu") == []
    scenarios["/tmp/x.yaml"] = Scenario(({"target": "media", "kind": "loss"},))
    assert book.has("media") and len(book.rules) == 2  # a scenario file loaded later joins too


def test_whole_numbers_given_as_floats_are_kept_whole():
    rule = FaultBook.seeded(1).add({"target": "api", "kind": "status", "status": 429, "retry_after": 2.0, "times": 3.0})
    assert rule.params["retry_after"] == 2 and isinstance(rule.params["retry_after"], int) and rule.times == 3
