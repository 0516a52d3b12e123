from __future__ import annotations

import pytest

from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Direction
from emulator.calls.store import TRANSITIONS, CallStore, IllegalTransition, require_alive, require_answered, transition
from emulator.errors import CallError


def make_store(**kwargs) -> CallStore:
    return CallStore(IdFactory(seed=7), **kwargs)


def test_lenient_lookup_creates_an_answered_call_once():
    store = make_store()
    call = store.lookup("call_control_id", now=0)
    assert call.state is CallState.ANSWERED and call.call_control_id == "call_control_id"
    assert store.lookup("call_control_id", now=1) is call


def test_strict_lookup_of_an_unknown_id_is_90015():
    with pytest.raises(CallError) as info:
        make_store(strict=True).lookup("v3:nope", now=0)
    assert info.value.status == 422 and info.value.problems[0].code == "90015"
    assert info.value.problems[0].pointer == "/call_control_id"


def test_command_id_is_a_duplicate_within_the_window_only():
    store = make_store(command_id_window=60)
    assert store.seen_command("c1", "cmd", now=0) is None
    store.remember_command("c1", "cmd", now=0, data={"result": "ok"})
    assert store.seen_command("c1", "cmd", now=59.9) == {"result": "ok"}
    assert store.seen_command("c2", "cmd", now=1) is None  # keyed by call too
    assert store.seen_command("c1", "cmd", now=60.0) is None
    assert not store._commands  # expired entries are dropped


@pytest.mark.parametrize("start", list(CallState))
@pytest.mark.parametrize("end", list(CallState))
def test_transitions_follow_the_table(start, end):
    store = make_store()
    call = store.create(direction=Direction.INCOMING, state=start, from_="+1", to="+2", connection_id="1", now=0)
    if end in TRANSITIONS[start]:
        transition(call, end, now=1)
        assert call.state is end and call.history[-1] == (1, end)
    else:
        with pytest.raises(IllegalTransition):
            transition(call, end, now=1)


@pytest.mark.parametrize(
    ("state", "alive_code", "answered_code"),
    [
        (CallState.PARKED, None, "90034"),
        (CallState.BRIDGING, None, "90034"),
        (CallState.ANSWERED, None, None),
        (CallState.ENDED, "90018", "90018"),
    ],
)
def test_state_guards_raise_telnyx_codes(state, alive_code, answered_code):
    call = make_store().create(direction=Direction.INCOMING, state=state, from_="+1", to="+2", connection_id="1", now=0)
    for guard, code in ((require_alive, alive_code), (require_answered, answered_code)):
        if code is None:
            guard(call)
        else:
            with pytest.raises(CallError) as info:
                guard(call)
            assert info.value.problems[0].code == code


def test_seeded_ids_are_reproducible_and_shaped_like_telnyx():
    a, b = IdFactory(seed=3), IdFactory(seed=3)
    assert [a.call_control_id(), a.time_uuid(), a.uuid4()] == [b.call_control_id(), b.time_uuid(), b.uuid4()]
    ccid = IdFactory().call_control_id()
    assert ccid.startswith("v3:") and len(ccid) == 3 + 54
    assert IdFactory().time_uuid()[14] == "1"


def test_past_the_history_the_oldest_ended_calls_are_forgotten_and_live_ones_kept():
    store = make_store(history=3)
    live = store.lookup("v3:live", now=0)
    ended = [store.lookup(f"v3:ended-{n}", now=n) for n in range(3)]
    for call in ended:
        transition(call, CallState.ENDED, now=5)
    assert len(store.calls) == 4  # none had ended when they were created: nothing to forget yet
    # Creating a fifth call forgets the two oldest ended calls; the live one, older still, stays.
    store.lookup("v3:new", now=6)
    assert list(store.calls) == ["v3:live", "v3:ended-2", "v3:new"]
    assert live.state is CallState.ANSWERED
    # A forgotten id is unknown again: in lenient mode, a fresh answered call.
    assert store.lookup("v3:ended-0", now=7).state is CallState.ANSWERED


def test_live_calls_are_never_forgotten_even_past_the_history():
    store = make_store(history=2)
    calls = [store.lookup(f"v3:{n}", now=n) for n in range(5)]
    assert list(store.calls) == [call.call_control_id for call in calls]


def test_a_made_up_id_is_a_ringing_call_for_answer_and_is_marked_as_made_up():
    store = make_store()
    call = store.lookup("call_control_id", now=0, lenient_state=CallState.PARKED)
    assert call.state is CallState.PARKED and call.direction is Direction.INCOMING and call.made_up
