"""Call Control commands as pure functions: (context, store, call, body) -> Outcome.

A command checks the call's state, changes the store, and returns the data of its 200 answer plus
*effects* (start a stream, stop streams) that ``runtime`` carries out. Nothing here does I/O, so
every command is tested synchronously. ``ACTIONS`` maps the URL segment of
``/v2/calls/{call_control_id}/actions/{action}`` to its schema and function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import ValidationFailed, streaming_not_used, unsupported_codec
from emulator.ids import IdFactory
from emulator.models import Call, StreamRecord, StreamSpec, StreamTrack
from emulator.schemas import Problem
from emulator.store import CallStore, require_alive, require_answered

# Codecs the emulator can encode; Telnyx also lists OPUS and AMR-WB.
STREAMABLE_CODECS = ("PCMU", "PCMA", "G722", "L16")
OK: dict[str, Any] = {"result": "ok"}


@dataclass(frozen=True, slots=True)
class CommandContext:
    ids: IdFactory
    user_id: str
    call_codec: str  # what `stream_codec: default` resolves to
    scenario: str  # the server's default scenario
    now: float


@dataclass(frozen=True, slots=True)
class StartStream:
    record: StreamRecord


@dataclass(frozen=True, slots=True)
class StopStreams:
    records: tuple[StreamRecord, ...]
    reason: str


Effect = StartStream | StopStreams


@dataclass(frozen=True, slots=True)
class Outcome:
    data: dict[str, Any]
    effects: tuple[Effect, ...] = ()


Command = Callable[[CommandContext, CallStore, Call, Mapping[str, Any]], Outcome]


@dataclass(frozen=True, slots=True)
class Action:
    schema: str
    run: Command


def streaming_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_answered(call)
    record = open_stream(ctx, call, body)
    return Outcome(OK, (StartStream(record),))


def streaming_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_alive(call)
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
    return Outcome(OK, (StopStreams(tuple(active), "stopped"),))


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
    record = StreamRecord(spec)
    call.streams[spec.stream_id] = record
    return record


ACTIONS: dict[str, Action] = {
    "streaming_start": Action("streaming_start", streaming_start),
    "streaming_stop": Action("streaming_stop", streaming_stop),
}
