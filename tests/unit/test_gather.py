"""DigitGather, tick by tick: Telnyx's valid / invalid / timeout endings."""

from __future__ import annotations

from emulator.calls import reactions
from emulator.calls.actions import call as commands
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import ClipRequest, Emit, GatherRequest, StartGather
from emulator.calls.ids import IdFactory
from emulator.calls.store import CallStore
from emulator.media.gather import DigitGather, GatherRules


def run(gather: DigitGather, keys: dict[int, str], prompt_until: int = 0, ticks: int = 1000):
    for n in range(ticks):
        result = gather.feed(n * 20, tuple(keys.get(n, "")), n < prompt_until)
        if result is not None:
            return n, result
    return None


def test_the_terminating_digit_ends_valid_after_the_minimum_and_is_not_part_of_the_digits():
    assert run(DigitGather("g", GatherRules(), 0), {10: "4", 20: "2", 30: "#"}) == (30, ("valid", "42"))


def test_maximum_digits_ends_at_once_and_too_few_before_the_terminator_is_invalid():
    assert run(DigitGather("g", GatherRules(maximum_digits=2), 0), {5: "1", 6: "2"}) == (6, ("valid", "12"))
    assert run(DigitGather("g", GatherRules(minimum_digits=3), 0), {5: "1", 6: "#"}) == (6, ("invalid", "1"))


def test_a_key_outside_valid_digits_is_invalid():
    assert run(DigitGather("g", GatherRules(valid_digits="123"), 0), {5: "9"}) == (5, ("invalid", "9"))


def test_the_initial_timeout_counts_from_the_prompts_end_and_the_inter_digit_one_from_the_last_key():
    rules = GatherRules(initial_timeout_ms=200, inter_digit_timeout_ms=400)
    assert run(DigitGather("g", rules, 0, prompt="p"), {}, prompt_until=50) == (60, ("timeout", ""))
    assert run(DigitGather("g", rules, 0), {3: "7"}) == (23, ("valid", "7"))


def test_the_whole_timeout_and_a_stop_from_outside():
    rules = GatherRules(timeout_ms=1000, initial_timeout_ms=5000)
    assert run(DigitGather("g", rules, 0), {}) == (50, ("timeout", ""))
    gather = DigitGather("g", GatherRules(), 0)
    gather.feed(0, ("5",), False)
    assert gather.stop("cancelled") == ("cancelled", "5") and gather.feed(20, ("6",), False) is None


def test_a_try_that_fails_with_tries_left_starts_the_next_one_and_only_the_last_reports():
    ids = IdFactory(seed=9)
    ctx = CommandContext(ids=ids, user_id="u", call_codec="PCMU", scenario="default", now=0.0, timestamp="T")
    call, _ = commands.incoming_call(ctx, CallStore(ids), {"from": "+1", "to": "+2"})
    prompt, invalid = ClipRequest("gather-1", "gather", text="Press 1"), ClipRequest("gather-1-invalid", "gather")
    first = GatherRequest("gather-1", GatherRules(), prompt, maximum_tries=2, invalid_prompt=invalid)
    (again,) = reactions.gather_ended(ctx, call, first, "invalid", "9").effects
    assert isinstance(again, StartGather) and again.request.attempt == 2 and again.request.retry_prompt == invalid
    (ended,) = reactions.gather_ended(ctx, call, again.request, "timeout", "").effects
    assert isinstance(ended, Emit) and ended.payload["status"] == "timeout"  # no tries left
    (cancelled,) = reactions.gather_ended(ctx, call, first, "cancelled", "").effects
    assert isinstance(cancelled, Emit)  # only timeout and invalid are tried again
    (timed_out,) = reactions.gather_ended(ctx, call, first, "timeout", "").effects
    assert isinstance(timed_out, StartGather) and timed_out.request.retry_prompt is None
