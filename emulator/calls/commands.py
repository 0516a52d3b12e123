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

from emulator.api.schemas import Problem
from emulator.calls import events
from emulator.calls.effects import Effect, Emit, Outcome, Ring, StartMedia, StartStream, StopMedia, StopStreams
from emulator.calls.ids import IdFactory
from emulator.calls.models import Call, CallState, Direction, StreamEndReason, StreamRecord, StreamSpec, StreamTrack
from emulator.calls.store import CallStore, require_alive, require_answered, transition
from emulator.errors import TooManyStreams, ValidationFailed, streaming_not_used, unsupported_codec
from emulator.scenarios.loader import Callee

# Codecs the emulator can encode; Telnyx also lists OPUS and AMR-WB.
STREAMABLE_CODECS = ("PCMU", "PCMA", "G722", "L16")
OK: dict[str, Any] = {"result": "ok"}


@dataclass(frozen=True, slots=True)
class CommandContext:
    ids: IdFactory
    user_id: str
    call_codec: str  # what `stream_codec: default` resolves to
    scenario: str  # the server's default scenario
    now: float  # monotonic seconds, for the store's bookkeeping
    timestamp: str  # the same moment as ISO 8601 UTC, for payloads
    connection_id: str = "1000000000000000001"  # the emulated Call Control App
    # The --max-streams limit (0: none) and how many streams run now, across every namespace.
    max_streams: int = 0
    running_streams: int = 0


Command = Callable[[CommandContext, CallStore, Call, Mapping[str, Any]], Outcome]


@dataclass(frozen=True, slots=True)
class Action:
    schema: str
    run: Command
    # What a call_control_id the emulator has never seen is, in lenient mode: answered, except for
    # `answer`, which meets a ringing call (so answering it sends call.answered and starts its stream).
    lenient_state: CallState = CallState.ANSWERED


def require_stream_slot(ctx: CommandContext) -> None:
    """Refuse a new stream when --max-streams are running: checked before anything changes, so a
    refused command leaves no trace (no call created, no client_state noted)."""
    if ctx.max_streams and ctx.running_streams >= ctx.max_streams:
        raise TooManyStreams(ctx.max_streams)


def _note_client_state(call: Call, body: Mapping[str, Any]) -> None:
    # Telnyx echoes the client_state of the latest command that set one in later webhooks.
    if body.get("client_state") is not None:
        call.client_state = body["client_state"]


def dial(
    ctx: CommandContext, store: CallStore, body: Mapping[str, Any], callee: Callee, scenario: str | None = None
) -> tuple[Call, Outcome]:
    """``POST /v2/calls``: an outgoing call that rings, then is answered (or not) by the scenario's callee.

    ``scenario`` is what the called party says (None: the server's default).
    """
    if body.get("stream_url"):
        require_stream_slot(ctx)
    call = store.create(
        direction=Direction.OUTGOING,
        state=CallState.BRIDGING,
        from_=body["from"],
        to=body["to"] if isinstance(body["to"], str) else body["to"][0],
        connection_id=body["connection_id"],
        now=ctx.now,
        client_state=body.get("client_state"),
    )
    call.scenario = scenario
    call.webhook_url = body.get("webhook_url")
    effects: list[Effect] = [Emit(call, "call.initiated", events.call_initiated(call, ctx.timestamp))]
    if body.get("stream_url"):
        record = open_stream(ctx, call, body)
        if body.get("stream_establish_before_call_originate"):
            effects.append(StartStream(record))
        else:
            call.pending_stream = record
    effects.append(Ring(call, callee, body.get("timeout_secs", 30)))
    data = {
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "is_alive": False,
        "record_type": "call",
    }
    return call, Outcome(data, tuple(effects))


def callee_answers(ctx: CommandContext, call: Call) -> Outcome:
    """The ring timer fired and the callee picks up."""
    if call.state is not CallState.BRIDGING:
        return Outcome(OK)  # hung up while ringing
    return _answer(ctx, call)


def callee_hangs_up(ctx: CommandContext, call: Call, cause: str) -> Outcome:
    """The dialed call ends before an answer: busy, rejected, or nobody picked up in time."""
    if call.state is not CallState.BRIDGING:
        return Outcome(OK)
    return _end(ctx, call, cause=cause, source="callee")


def caller_hangs_up(
    ctx: CommandContext,
    call: Call,
    cause: str,
    reason: StreamEndReason = StreamEndReason.HANGUP,
    error: str | None = None,
) -> Outcome:
    """The scripted far end hangs up: a ``hangup`` step, the end of its script, or a wait that failed
    (``reason`` and ``error`` say which to the call's streams)."""
    if call.state is CallState.ENDED:
        return Outcome(OK)
    if error is not None:
        for record in call.active_streams():
            record.error = error
    # The scenario speaks for the caller of an incoming call and for the callee of a dialed one.
    source = "caller" if call.direction is Direction.INCOMING else "callee"
    return _end(ctx, call, cause=cause, source=source, reason=reason)


def answer(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_alive(call)
    if call.state is not CallState.PARKED:
        # Already answered, or a dialed call (the callee answers those): a second answer, e.g. from a
        # retried call.initiated webhook, must not pass silently with its stream_url ignored.
        detail = "Only an incoming call that is still ringing can be answered; this one is " + (
            "already answered." if call.state is CallState.ANSWERED else "an outgoing call."
        )
        raise ValidationFailed([Problem("10015", "Invalid call state", detail, None)])
    if body.get("stream_url"):
        require_stream_slot(ctx)
    _note_client_state(call, body)
    if body.get("webhook_url"):
        call.webhook_url = body["webhook_url"]
    if body.get("stream_url"):
        call.pending_stream = open_stream(ctx, call, body)
    return _answer(ctx, call)


def _answer(ctx: CommandContext, call: Call) -> Outcome:
    transition(call, CallState.ANSWERED, ctx.now)
    call.start_time = ctx.timestamp
    effects: list[Effect] = [Emit(call, "call.answered", events.call_answered(call))]
    if call.pending_stream is not None:
        effects.append(StartStream(call.pending_stream))
        call.pending_stream = None
    effects.append(_start_media(call))
    return Outcome(OK, tuple(effects))


def _start_media(call: Call) -> StartMedia:
    # The caller starts once the answer's streams (and one opened before the dial rang) can hear it.
    call.has_media = True
    return StartMedia(call, tuple(record.spec.stream_id for record in call.active_streams()))


def hangup(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_alive(call)
    _note_client_state(call, body)
    if call.state is CallState.BRIDGING:  # the app gives up on its own dialed call before the answer
        return _end(ctx, call, cause="originator_cancel", source="caller")
    return _end(ctx, call, cause="normal_clearing", source=events.app_hangup_source(call))


def _end(
    ctx: CommandContext, call: Call, *, cause: str, source: str, reason: StreamEndReason = StreamEndReason.HANGUP
) -> Outcome:
    was_answered = call.state is CallState.ANSWERED
    transition(call, CallState.ENDED, ctx.now)
    call.end_time = ctx.timestamp
    call.pending_stream = None
    effects: list[Effect] = [Emit(call, "call.hangup", events.call_hangup(call, cause, source))]
    active = call.active_streams()
    for record in active:
        record.stop_requested = True
    if active:
        effects.append(StopStreams(tuple(active), reason))
    if was_answered:
        effects.append(StopMedia(call))
    return Outcome(OK, tuple(effects))


def streaming_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_answered(call)
    require_stream_slot(ctx)
    _note_client_state(call, body)
    record = open_stream(ctx, call, body)
    if not call.has_media:  # a call the app made up (lenient mode) is answered, and its caller starts, now
        return Outcome(OK, (StartStream(record), _start_media(call)))
    return Outcome(OK, (StartStream(record),))


def streaming_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    require_alive(call)
    _note_client_state(call, body)
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


ACTIONS: dict[str, Action] = {
    "answer": Action("answer", answer, lenient_state=CallState.PARKED),
    "hangup": Action("hangup", hangup),
    "streaming_start": Action("streaming_start", streaming_start),
    "streaming_stop": Action("streaming_stop", streaming_stop),
}
