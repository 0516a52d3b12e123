from __future__ import annotations

import pytest

from emulator.calls.actions import ACTIONS, call as commands
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import Emit, Ring, StartMedia, StartStream, StopMedia, StopStreams
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Direction, StreamState, StreamTrack
from emulator.calls.store import CallStore, transition
from emulator.errors import ApiError, ValidationFailed
from emulator.scenarios.loader import Callee

WS = "ws://127.0.0.1:9/stream"


def setup():
    ids = IdFactory(seed=1)
    store = CallStore(ids)
    ctx = CommandContext(ids=ids, user_id="user", call_codec="PCMA", scenario="default", now=0, timestamp="T0")
    return ctx, store, store.lookup("v3:c", now=0)


def run(action, body):
    ctx, store, call = setup()
    return ACTIONS[action].run(ctx, store, call, body), call


def test_streaming_start_registers_a_stream_and_asks_for_it_to_start():
    outcome, call = run("streaming_start", {"stream_url": WS, "stream_track": "both_tracks"})
    assert outcome.data == {"result": "ok"}
    effect, media = outcome.effects  # a made-up call's caller starts with its first stream, and waits for it
    assert isinstance(effect, StartStream) and isinstance(media, StartMedia)
    spec = effect.record.spec
    assert media.call is call and media.awaiting == (spec.stream_id,) and call.has_media
    assert call.streams == {spec.stream_id: effect.record}
    assert spec.track is StreamTrack.BOTH and spec.codec == "PCMA"  # default -> the call's codec
    assert spec.scenario == "default" and effect.record.state is StreamState.CONNECTING


@pytest.mark.parametrize("codec", ["OPUS", "AMR-WB"])
def test_codecs_the_emulator_cannot_encode_are_rejected(codec):
    with pytest.raises(ApiError) as info:
        run("streaming_start", {"stream_url": WS, "stream_codec": codec})
    assert info.value.status == 422 and info.value.problems[0].pointer == "/stream_codec"


def test_streaming_start_on_an_ended_call_is_90018():
    ctx, store, call = setup()
    transition(call, CallState.ENDED, now=1)
    with pytest.raises(ApiError) as info:
        ACTIONS["streaming_start"].run(ctx, store, call, {"stream_url": WS})
    assert info.value.problems[0].code == "90018"


def test_streaming_stop_stops_one_stream_or_all_and_then_reports_90048():
    ctx, store, call = setup()
    first = ACTIONS["streaming_start"].run(ctx, store, call, {"stream_url": WS}).effects[0]
    ACTIONS["streaming_start"].run(ctx, store, call, {"stream_url": WS})
    one = ACTIONS["streaming_stop"].run(ctx, store, call, {"stream_id": first.record.spec.stream_id})
    assert isinstance(one.effects[0], StopStreams) and one.effects[0].records == (first.record,)
    rest = ACTIONS["streaming_stop"].run(ctx, store, call, {})
    assert len(rest.effects[0].records) == 1 and rest.effects[0].records[0] is not first.record
    with pytest.raises(ApiError) as info:
        ACTIONS["streaming_stop"].run(ctx, store, call, {})
    assert info.value.problems[0].code == "90048"


def test_streaming_stop_of_an_unknown_stream_id_points_at_stream_id():
    ctx, store, call = setup()
    ACTIONS["streaming_start"].run(ctx, store, call, {"stream_url": WS})
    with pytest.raises(ApiError) as info:
        ACTIONS["streaming_stop"].run(ctx, store, call, {"stream_id": "00000000-0000-4000-8000-000000000000"})
    assert info.value.problems[0].pointer == "/stream_id"


def context(ids):
    return CommandContext(ids=ids, user_id="user", call_codec="PCMU", scenario="default", now=5, timestamp="T5")


DIAL = {"connection_id": "77", "to": "+13125550199", "from": "+13125550100"}


def test_dial_creates_a_bridging_call_that_rings_and_streams_on_answer():
    ids = IdFactory(seed=2)
    store = CallStore(ids)
    call, outcome = commands.dial(context(ids), store, {**DIAL, "stream_url": WS, "timeout_secs": 9}, Callee())
    assert call.state is CallState.BRIDGING and call.direction.value == "outgoing"
    assert outcome.data == {
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "is_alive": False,
        "record_type": "call",
    }
    emit, ring = outcome.effects
    assert isinstance(emit, Emit) and emit.event_type == "call.initiated" and emit.payload["state"] == "bridging"
    assert isinstance(ring, Ring) and ring.timeout_secs == 9
    assert call.pending_stream is not None  # opened on answer, not before

    answered = commands.callee_answers(context(ids), call, Callee())
    assert call.state is CallState.ANSWERED and call.start_time == "T5"
    assert [type(e) for e in answered.effects] == [Emit, StartStream, StartMedia]
    assert answered.effects[1].record is next(iter(call.streams.values()))
    assert answered.effects[2].awaiting == (answered.effects[1].record.spec.stream_id,)


def test_stream_establish_before_call_originate_starts_the_stream_at_once():
    ids = IdFactory(seed=2)
    body = {**DIAL, "stream_url": WS, "stream_establish_before_call_originate": True}
    call, outcome = commands.dial(context(ids), CallStore(ids), body, Callee())
    assert [type(e) for e in outcome.effects] == [Emit, StartStream, Ring] and call.pending_stream is None


def test_hangup_ends_the_call_stops_streams_and_reports_who_hung_up():
    ctx, store, call = setup()
    started = ACTIONS["streaming_start"].run(ctx, store, call, {"stream_url": WS}).effects[0]
    outcome = ACTIONS["hangup"].run(ctx, store, call, {"client_state": "Ynll"})
    emit, stop, media = outcome.effects
    assert isinstance(media, StopMedia) and media.call is call
    assert call.state is CallState.ENDED and call.client_state == "Ynll"
    assert emit.event_type == "call.hangup"
    assert (emit.payload["hangup_cause"], emit.payload["hangup_source"]) == ("normal_clearing", "callee")
    assert isinstance(stop, StopStreams) and stop.records == (started.record,) and stop.reason == "hangup"


def test_hangup_of_a_ringing_dial_is_originator_cancel_and_the_callee_then_does_nothing():
    ids = IdFactory(seed=2)
    store = CallStore(ids)
    call, _ = commands.dial(context(ids), store, DIAL, Callee())
    outcome = ACTIONS["hangup"].run(context(ids), store, call, {})
    assert outcome.effects[0].payload["hangup_cause"] == "originator_cancel"
    assert commands.callee_answers(context(ids), call, Callee()).effects == ()


def test_answer_of_a_parked_call_and_of_an_already_answered_call():
    ids = IdFactory(seed=3)
    store = CallStore(ids)
    call = store.create(
        direction=Direction.INCOMING, state=CallState.PARKED, from_="+1", to="+2", connection_id="1", now=0
    )
    outcome = ACTIONS["answer"].run(context(ids), store, call, {"stream_url": WS})
    assert [e.event_type for e in outcome.effects if isinstance(e, Emit)] == ["call.answered"]
    assert any(isinstance(e, StartStream) for e in outcome.effects)
    # A second answer is refused, not silently ignored with its stream_url.
    with pytest.raises(ValidationFailed) as info:
        ACTIONS["answer"].run(context(ids), store, call, {"stream_url": WS})
    assert info.value.problems[0].code == "10015" and "already answered" in (info.value.problems[0].detail or "")
