from __future__ import annotations

import pytest

from emulator.commands import ACTIONS, CommandContext, StartStream, StopStreams
from emulator.errors import ApiError
from emulator.ids import IdFactory
from emulator.models import CallState, StreamState, StreamTrack
from emulator.store import CallStore

WS = "ws://127.0.0.1:9/stream"


def setup():
    ids = IdFactory(seed=1)
    store = CallStore(ids)
    ctx = CommandContext(ids=ids, user_id="user", call_codec="PCMA", scenario="default", now=0)
    return ctx, store, store.lookup("v3:c", now=0)


def run(action, body):
    ctx, store, call = setup()
    return ACTIONS[action].run(ctx, store, call, body), call


def test_streaming_start_registers_a_stream_and_asks_for_it_to_start():
    outcome, call = run("streaming_start", {"stream_url": WS, "stream_track": "both_tracks"})
    assert outcome.data == {"result": "ok"}
    (effect,) = outcome.effects
    assert isinstance(effect, StartStream)
    spec = effect.record.spec
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
    store.transition(call, CallState.ENDED, now=1)
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
