"""bridge, transfer and the end of a bridge as pure commands: which webhooks, which media links, which leg ends."""

from __future__ import annotations

import pytest

from emulator.calls.actions import ACTIONS
from emulator.calls.actions.bridging import leg_answers, supervise
from emulator.calls.actions.call import hangup
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import Connect, Disconnect, Emit, Ring
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Unbridge
from emulator.calls.store import CallStore
from emulator.scenarios.loader import Callee


def setup():
    ids = IdFactory(seed=1)
    store = CallStore(ids)
    ctx = CommandContext(ids=ids, user_id="user", call_codec="PCMU", scenario="default", now=0, timestamp="T0")
    a, b = store.lookup("v3:a", now=0), store.lookup("v3:b", now=0)
    for call in (a, b):
        call.has_media = True
    return ctx, store, a, b


def emitted(outcome) -> list[tuple[str, str]]:
    return [(e.call.call_control_id, e.event_type) for e in outcome.effects if isinstance(e, Emit)]


def test_bridge_links_both_ways_and_sends_call_bridged_on_each_leg():
    ctx, store, a, b = setup()
    outcome = ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b", "hold_after_unbridge": True})
    assert emitted(outcome) == [("v3:a", "call.bridged"), ("v3:b", "call.bridged")]
    links = [(e.speaker.call_control_id, e.listener.call_control_id) for e in outcome.effects if isinstance(e, Connect)]
    assert links == [("v3:a", "v3:b"), ("v3:b", "v3:a")]
    assert a.bridged_to is b and b.bridged_to is a and a.unbridge is Unbridge.HOLD


@pytest.mark.parametrize(("behaviour", "other_ends"), [(Unbridge.HANGUP, True), (Unbridge.PARK, False)])
def test_when_a_leg_hangs_up_the_other_does_what_its_bridge_said(behaviour, other_ends):
    ctx, store, a, b = setup()
    ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b"})
    a.unbridge = behaviour
    outcome = hangup(ctx, store, b, {})
    assert [e for e in outcome.effects if isinstance(e, Disconnect)] and a.bridged_to is None
    assert a.is_alive is not other_ends
    assert (
        ("v3:a", "call.hangup") in emitted(outcome) if other_ends else ("v3:a", "call.hangup") not in emitted(outcome)
    )


def test_bridging_a_bridged_call_elsewhere_ends_its_old_bridge_as_that_bridge_said():
    ctx, store, a, b = setup()
    c = store.lookup("v3:c", now=0)
    c.has_media = True
    ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b"})
    outcome = ACTIONS["bridge"].run(ctx, store, c, {"call_control_id": "v3:a"})
    assert not b.is_alive and a.bridged_to is c and c.bridged_to is a  # b had the default: hang up
    assert ("v3:b", "call.hangup") in emitted(outcome)


def test_transfer_dials_a_leg_of_the_same_session_and_bridges_it_when_it_answers():
    ctx, store, a, _ = setup()
    callee = Callee(ring_ms=100)
    ctx = CommandContext(**{**{f: getattr(ctx, f) for f in ctx.__slots__}, "callee_for": lambda to: ("agent", callee)})
    outcome = ACTIONS["transfer"].run(ctx, store, a, {"to": "+13125550133", "target_leg_client_state": "YQ=="})
    ring = next(e for e in outcome.effects if isinstance(e, Ring))
    leg = ring.call
    assert leg.state is CallState.BRIDGING and leg.scenario == "agent" and leg.client_state == "YQ=="
    assert leg.call_session_id == a.call_session_id and leg.from_ == a.to and a.transferring is leg
    answered = leg_answers(ctx, leg, callee)
    assert emitted(answered)[0] == (leg.call_control_id, "call.answered")
    assert emitted(answered)[-2:] == [("v3:a", "call.bridged"), (leg.call_control_id, "call.bridged")]
    assert a.bridged_to is leg and a.transferring is None


def test_a_call_that_hangs_up_while_its_transfer_rings_cancels_the_new_leg():
    ctx, store, a, _ = setup()
    outcome = ACTIONS["transfer"].run(ctx, store, a, {"to": "+13125550133"})
    leg = next(e for e in outcome.effects if isinstance(e, Ring)).call
    ended = hangup(ctx, store, a, {})
    assert not leg.is_alive and (leg.call_control_id, "call.hangup") in emitted(ended)
    cancel = next(e for e in ended.effects if isinstance(e, Emit) and e.call is leg)
    assert cancel.payload["hangup_cause"] == "originator_cancel"


def test_a_supervisor_hears_both_legs_and_its_role_says_who_hears_it():
    ctx, store, a, b = setup()
    ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b"})
    sup = store.lookup("v3:s", now=0)
    sup.supervising, sup.supervisor_role = a, "whisper"
    links = {(e.speaker.call_control_id, e.listener.call_control_id) for e in supervise(sup)}
    assert links == {("v3:a", "v3:s"), ("v3:b", "v3:s"), ("v3:s", "v3:a")}
    barge = ACTIONS["switch_supervisor_role"].run(ctx, store, sup, {"role": "barge"})
    assert [(type(e).__name__, e.listener.call_control_id) for e in barge.effects] == [("Connect", "v3:b")]
    monitor = ACTIONS["switch_supervisor_role"].run(ctx, store, sup, {"role": "monitor"})
    assert {(type(e).__name__, e.listener.call_control_id) for e in monitor.effects} == {
        ("Disconnect", "v3:a"),
        ("Disconnect", "v3:b"),
    }
    ended = hangup(ctx, store, sup, {})
    assert {
        (e.speaker.call_control_id, e.listener.call_control_id) for e in ended.effects if isinstance(e, Disconnect)
    } >= {("v3:a", "v3:s"), ("v3:b", "v3:s")}


def test_enqueueing_a_bridged_call_unbridges_it_first():
    ctx, store, a, b = setup()
    ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b", "park_after_unbridge": "self"})
    b.unbridge = Unbridge.PARK
    outcome = ACTIONS["enqueue"].run(ctx, store, a, {"queue_name": "support"})
    assert a.bridged_to is None and b.bridged_to is None and b.is_alive
    assert [e.event_type for e in outcome.effects if isinstance(e, Emit)] == ["call.enqueued"]
    assert any(isinstance(e, Disconnect) for e in outcome.effects)


def test_a_linked_call_that_still_rings_is_bridged_when_it_answers_not_before():
    ctx, store, a, _ = setup()
    ringing = store.lookup("v3:r", now=0)
    ringing.state = CallState.BRIDGING
    leg = store.lookup("v3:l", now=0)
    leg.state, leg.bridge_on_answer = CallState.BRIDGING, ringing
    answered = leg_answers(ctx, leg, Callee())
    assert not any(isinstance(e, Connect) for e in answered.effects) and ringing.bridge_on_answer is leg
    ringing_answers = leg_answers(ctx, ringing, Callee())
    assert ringing.bridged_to is leg and any(isinstance(e, Connect) for e in ringing_answers.effects)


def test_supervisors_stop_hearing_a_leg_that_ends_and_a_queued_call_bridged_by_id_leaves_its_queue():
    ctx, store, a, b = setup()
    ACTIONS["enqueue"].run(ctx, store, b, {"queue_name": "support"})
    bridged = ACTIONS["bridge"].run(ctx, store, a, {"call_control_id": "v3:b"})
    assert b.queued is None and ("v3:b", "call.dequeued") in emitted(bridged)
    sup = store.lookup("v3:s", now=0)
    sup.supervising, sup.supervisor_role = a, "monitor"
    supervise(sup)
    b.unbridge = Unbridge.PARK
    ended = hangup(ctx, store, a, {})
    assert ("v3:a", "v3:s") in {
        (e.speaker.call_control_id, e.listener.call_control_id) for e in ended.effects if isinstance(e, Disconnect)
    }
    assert sup.supervised == (b,) and a.supervisors == []
