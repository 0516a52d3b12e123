"""Media streaming commands: streaming_start and streaming_stop, and the stream_* fields that open a stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.actions.context import OK, CommandContext, note_client_state, require_stream_slot, start_media
from emulator.calls.effects import Outcome, StartStream, StopStreams
from emulator.calls.models import Call, StreamEndReason, StreamRecord, StreamSpec, StreamTrack
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed, streaming_not_used, unsupported_codec
from emulator.media.codecs import Codec

# Codecs the emulator can encode; Telnyx also lists OPUS and AMR-WB.
STREAMABLE_CODECS = tuple(Codec)


def streaming_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_stream_slot(ctx)
    note_client_state(call, body)
    record = open_stream(ctx, call, body)
    if not call.has_media:  # a call the app made up (lenient mode) is answered, and its caller starts, now
        return Outcome(OK, (StartStream(record), start_media(call)))
    return Outcome(OK, (StartStream(record),))


def streaming_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    active = call.active_streams()
    if not active:
        raise streaming_not_used()
    stream_id = body.get("stream_id")
    if stream_id is not None:
        active = [record for record in active if record.spec.stream_id.lower() == str(stream_id).lower()]
        if not active:
            detail = "No stream with this stream_id is running on the call."
            raise ValidationFailed([Problem("10015", "Invalid value", detail, "/stream_id")])
    for record in active:
        record.stop_requested = True
    return Outcome(OK, (StopStreams(tuple(active), StreamEndReason.STOPPED),))


def open_stream(ctx: CommandContext, call: Call, body: Mapping[str, Any]) -> StreamRecord:
    """Register a new stream on ``call`` from the stream_* fields of streaming_start, dial or answer."""
    if body.get("enable_dialogflow") and not body.get("stream_url"):
        detail = "The emulator does not emulate Dialogflow streams; set stream_url to a WebSocket URL."
        raise ValidationFailed([Problem("10015", "Dialogflow not supported by the emulator", detail, "/stream_url")])
    codec = body.get("stream_codec", "default")
    if codec == "default":
        codec = ctx.call_codec
    elif codec not in STREAMABLE_CODECS:
        raise unsupported_codec("stream_codec", codec, (*STREAMABLE_CODECS, "default"))
    mode = body.get("stream_bidirectional_mode", "mp3")
    bidirectional_codec = body.get("stream_bidirectional_codec", "PCMU")
    if mode == "rtp" and bidirectional_codec not in STREAMABLE_CODECS:
        raise unsupported_codec("stream_bidirectional_codec", bidirectional_codec, STREAMABLE_CODECS)
    spec = StreamSpec(
        stream_id=ctx.ids.stream_id(),
        call_control_id=call.call_control_id,
        call_leg_id=call.call_leg_id,
        call_session_id=call.call_session_id,
        user_id=ctx.user_id,
        from_=call.from_,
        to=call.to,
        stream_url=body["stream_url"],
        track=StreamTrack(body.get("stream_track", StreamTrack.INBOUND)),
        codec=codec,
        auth_token=body.get("stream_auth_token"),
        client_state=body.get("client_state", call.client_state),
        custom_parameters=tuple((p["name"], p["value"]) for p in body.get("custom_parameters", ())),
        bidirectional_mode=mode,
        bidirectional_codec=bidirectional_codec,
        bidirectional_sampling_rate=body.get("stream_bidirectional_sampling_rate", 8000),
        bidirectional_target_legs=body.get("stream_bidirectional_target_legs", "opposite"),
        scenario=call.scenario or ctx.scenario,
    )
    record = StreamRecord(spec, call)
    call.streams[spec.stream_id] = record
    return record
