from __future__ import annotations

import json

from emulator.calls.models import StreamSpec, StreamTrack
from emulator.media import frames

SPEC = StreamSpec(
    stream_id="32de0dea-53cb-4b21-89a4-9e1819c043bc",
    call_control_id="v3:abc",
    call_leg_id="leg",
    call_session_id="session",
    user_id="user",
    from_="+13125550100",
    to="+13125550199",
    stream_url="ws://x",
    track=StreamTrack.BOTH,
    codec="PCMU",
    client_state="aGk=",
    custom_parameters=(("customer_id", "c-1"),),
)


def test_connected_frame_without_and_with_auth_token():
    assert json.loads(frames.connected_frame()) == {"event": "connected", "version": "1.0.0"}
    assert json.loads(frames.connected_frame("tok")) == {
        "event": "connected",
        "version": "1.0.0",
        "connected": {"x-telnyx-streaming-auth-token": "tok"},
    }


def test_start_frame_has_stream_id_at_top_level_and_flat_custom_parameters():
    assert json.loads(frames.start_frame(1, SPEC, 8000)) == {
        "event": "start",
        "sequence_number": "1",
        "start": {
            "user_id": "user",
            "call_control_id": "v3:abc",
            "call_session_id": "session",
            "from": "+13125550100",
            "to": "+13125550199",
            "client_state": "aGk=",
            "custom_parameters": {"customer_id": "c-1"},
            "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
        },
        "stream_id": SPEC.stream_id,
    }


def test_start_frame_leaves_out_client_state_when_there_is_none():
    spec = StreamSpec(**{**{f: getattr(SPEC, f) for f in SPEC.__dataclass_fields__}, "client_state": None})
    assert "client_state" not in json.loads(frames.start_frame(1, spec, 8000))["start"]


def test_media_frame_template_is_valid_json_with_string_counters():
    raw = frames.media_frame(4, SPEC.stream_id, "inbound", 2, 20, "//8=")
    assert json.loads(raw) == {
        "event": "media",
        "sequence_number": "4",
        "media": {"track": "inbound", "chunk": "2", "timestamp": "20", "payload": "//8="},
        "stream_id": SPEC.stream_id,
    }


def test_dtmf_mark_stop_and_error_frames():
    assert json.loads(frames.dtmf_frame(5, "s", "#", "2026-01-01T00:00:00.000000Z")) == {
        "event": "dtmf",
        "sequence_number": "5",
        "occurred_at": "2026-01-01T00:00:00.000000Z",
        "dtmf": {"digit": "#"},
        "stream_id": "s",
    }
    assert json.loads(frames.mark_frame(6, "s", "m1")) == {
        "event": "mark",
        "sequence_number": "6",
        "mark": {"name": "m1"},
        "stream_id": "s",
    }
    assert json.loads(frames.stop_frame(7, SPEC)) == {
        "event": "stop",
        "sequence_number": "7",
        "stop": {"user_id": "user", "call_control_id": "v3:abc"},
        "stream_id": SPEC.stream_id,
    }
    error = json.loads(frames.error_frame("s", 100003, "malformed_frame", "Received frame was not formed correctly"))
    assert error["payload"]["code"] == 100003 and error["event"] == "error"
