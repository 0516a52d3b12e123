"""The call's own commands: dial, an incoming call, answer, hangup, and what the far end does (pure).

Each returns an ``Outcome``: the data of the 200 answer and the effects (webhooks, streams, the call's
media) that the runtime carries out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls import events
from emulator.calls.actions import ai, forking, queueing, sip, transcription
from emulator.calls.actions.context import (
    OK,
    CommandContext,
    clip_key,
    note_client_state,
    recording_request,
    require_stream_slot,
    start_media,
)
from emulator.calls.actions.streaming import open_stream
from emulator.calls.effects import (
    ClipRequest,
    Cue,
    Disconnect,
    Effect,
    Emit,
    Outcome,
    PlayClip,
    Ring,
    StartRecording,
    StartStream,
    StartTimer,
    StopMedia,
    StopStreams,
)
from emulator.calls.machine_detection import detection_cues
from emulator.calls.models import Call, CallState, Direction, StreamEndReason, Unbridge
from emulator.calls.store import LENIENT_CONNECTION_ID, CallStore, transition
from emulator.errors import Problem, ValidationFailed
from emulator.scenarios.loader import Callee


def dial(
    ctx: CommandContext,
    store: CallStore,
    body: Mapping[str, Any],
    callee: Callee,
    scenario: str | None = None,
    session: Call | None = None,
) -> tuple[Call, Outcome]:
    """``POST /v2/calls``: an outgoing call that rings, then is answered (or not) by the scenario's callee.

    ``scenario`` is what the called party says (None: the server's default); ``session``, a call whose session the
    new leg joins (transfer, link_to).
    """
    if body.get("stream_url"):
        require_stream_slot(ctx)
    to, digits = _split_digits(body["to"] if isinstance(body["to"], str) else body["to"][0])
    call = store.create(
        direction=Direction.OUTGOING,
        state=CallState.BRIDGING,
        from_=body["from"],
        to=to,
        connection_id=body["connection_id"],
        now=ctx.now,
        client_state=body.get("client_state"),
        call_session_id=session.call_session_id if session is not None else None,
    )
    call.scenario = scenario
    call.webhook_url = body.get("webhook_url")
    call.answer_options = {key: body[key] for key in ANSWER_OPTIONS if key in body}
    call.dialed_via = ctx.base_url
    if digits and "send_digits_on_answer" not in body:  # "+18005550100,200": the explicit field wins
        call.answer_options["send_digits_on_answer"] = digits
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
    if body.get("record") == "record-from-answer":  # Telnyx names the recording-to-be in dial's answer
        call.answer_recording_id = data["recording_id"] = ctx.ids.uuid4()
    return call, Outcome(data, tuple(effects))


# dial's fields that act when the callee answers.
ANSWER_OPTIONS = (
    "record",
    "record_channels",
    "record_custom_file_name",
    "record_format",
    "record_max_length",
    "record_track",
    "transcription",
    "transcription_config",
    "audio_url",
    "media_name",
    "send_digits_on_answer",
    "time_limit_secs",
    "answering_machine_detection",
    "answering_machine_detection_config",
)


def _split_digits(to: str) -> tuple[str, str]:
    """``+18005550100,200``: the number, and the digits sent once the callee answers."""
    number, _, digits = to.partition(",")
    return number, digits


def incoming_call(
    ctx: CommandContext, store: CallStore, body: Mapping[str, Any], scenario: str | None = None
) -> tuple[Call, Outcome]:
    """Someone calls the app (``POST /_emulator/calls``): a parked incoming call and ``call.initiated``."""
    call = store.create(
        direction=Direction.INCOMING,
        state=CallState.PARKED,
        from_=body["from"],
        to=body["to"],
        connection_id=body.get("connection_id", LENIENT_CONNECTION_ID),
        now=ctx.now,
        client_state=body.get("client_state"),
    )
    call.scenario = scenario
    call.webhook_url = body.get("webhook_url")
    initiated = events.call_initiated(call, ctx.timestamp, ctx.call_codec)
    return call, Outcome(OK, (Emit(call, "call.initiated", initiated),))


def callee_answers(ctx: CommandContext, call: Call, callee: Callee) -> Outcome:
    """The ring timer fired and the callee picks up: what dial asked for at the answer starts."""
    if call.state is not CallState.BRIDGING:
        return Outcome(OK)  # hung up while ringing
    return _answer(ctx, call, call.answer_options or {}, callee)


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
    return _end(ctx, call, cause=cause, source=events.far_end_hangup_source(call), reason=reason)


def _require_ringing(call: Call, verb: str) -> None:
    if call.state is not CallState.PARKED:
        # Already answered, or a dialed call (the callee answers those): a second answer, e.g. from a
        # retried call.initiated webhook, must not pass silently with its stream_url ignored.
        detail = f"Only an incoming call that is still ringing can be {verb}; this one is " + (
            "already answered." if call.state is CallState.ANSWERED else "an outgoing call."
        )
        raise ValidationFailed([Problem("10015", "Invalid call state", detail, None)])


def answer(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    _require_ringing(call, "answered")
    if body.get("stream_url"):
        require_stream_slot(ctx)
    note_client_state(call, body)
    if body.get("webhook_url"):
        call.webhook_url = body["webhook_url"]
    if body.get("stream_url"):
        call.pending_stream = open_stream(ctx, call, body)
    outcome = _answer(ctx, call, body)
    if call.answer_recording_id is not None:
        return Outcome({**outcome.data, "recording_id": call.answer_recording_id}, outcome.effects)
    return outcome


def _answer(ctx: CommandContext, call: Call, options: Mapping[str, Any], callee: Callee | None = None) -> Outcome:
    """The call is answered: call.answered, its streams and media start, then what ``options`` (answer's body,
    or dial's fields for the answer) ask for on the call's timeline."""
    transition(call, CallState.ANSWERED, ctx.now)
    call.start_time = ctx.timestamp
    effects: list[Effect] = [Emit(call, "call.answered", events.call_answered(call))]
    if call.pending_stream is not None:
        effects.append(StartStream(call.pending_stream))
        call.pending_stream = None
    effects.append(start_media(call))
    effects.extend(_on_answer(ctx, call, options, callee))
    return Outcome(OK, tuple(effects))


def _on_answer(ctx: CommandContext, call: Call, options: Mapping[str, Any], callee: Callee | None) -> list[Effect]:
    effects: list[Effect] = []
    if options.get("record") == "record-from-answer":
        call.answer_recording_id = call.answer_recording_id or ctx.ids.uuid4()
        effects.append(record_from_now(ctx, call, options, call.answer_recording_id))
    if options.get("transcription"):
        call.transcription = transcription.settings(options.get("transcription_config") or {})
    if options.get("audio_url") or options.get("media_name"):
        url, name = options.get("audio_url"), options.get("media_name")
        greeting = ClipRequest(clip_key(call, "playback"), "playback", audio_url=url, media_name=name)
        effects.append(PlayClip(call, greeting))
    if options.get("send_digits_on_answer"):
        digits = ClipRequest(clip_key(call, "dtmf"), "dtmf", digits=options["send_digits_on_answer"], overlay=True)
        effects.append(PlayClip(call, digits))
    if "time_limit_secs" in options:
        effects.append(StartTimer(call, int(options["time_limit_secs"] * 1000), Cue("time_limit")))
    if callee is not None:
        mode = options.get("answering_machine_detection", "disabled")
        config = options.get("answering_machine_detection_config") or {}
        effects.extend(StartTimer(call, at, cue) for at, cue in detection_cues(mode, config, callee))
    return effects


def record_from_now(
    ctx: CommandContext, call: Call, options: Mapping[str, Any], recording_id: str | None = None
) -> StartRecording:
    """``record: record-from-answer`` (dial, transfer, bridge): the call records from now, as ``options``' record_*
    fields say (Telnyx's defaults: mp3, dual channel, both tracks, no limit), under ``recording_id`` (the one
    dial's answer announced) or a new one."""
    recording_id = recording_id or ctx.ids.uuid4()
    call.recordings.append(recording_id)
    request = recording_request(
        ctx,
        call,
        recording_id,
        format=options.get("record_format", "mp3"),
        channels=options.get("record_channels", "dual"),
        track=options.get("record_track", "both"),
        play_beep=False,
        max_length=options.get("record_max_length", 0),
        file_name=options.get("record_custom_file_name"),
    )
    return StartRecording(call, request)


def referred_away(ctx: CommandContext, call: Call) -> Outcome:
    """The far end followed the app's refer: it hangs up here (normal_clearing)."""
    if call.state is not CallState.ANSWERED:
        return Outcome(OK)
    return _end(ctx, call, cause="normal_clearing", source=events.far_end_hangup_source(call))


def time_limit_reached(ctx: CommandContext, call: Call) -> Outcome:
    """time_limit_secs after the answer the call ends (call.hangup with hangup_cause time_limit)."""
    if call.state is not CallState.ANSWERED:
        return Outcome(OK)
    return _end(ctx, call, cause="time_limit", source="unknown")


def hangup(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    if call.state is CallState.BRIDGING:  # the app gives up on its own dialed call before the answer
        return _end(ctx, call, cause="originator_cancel", source="caller")
    return _end(ctx, call, cause="normal_clearing", source=events.app_hangup_source(call))


def _end(
    ctx: CommandContext, call: Call, *, cause: str, source: str, reason: StreamEndReason = StreamEndReason.HANGUP
) -> Outcome:
    was_answered = call.state is CallState.ANSWERED
    transition(call, CallState.ENDED, ctx.now)
    call.end_time = ctx.timestamp
    call.hangup_cause, call.hangup_source = cause, source
    call.pending_stream = None
    effects: list[Effect] = [Emit(call, "call.hangup", events.call_hangup(call, cause, source))]
    active = call.active_streams()
    for record in active:
        record.stop_requested = True
    if active:
        effects.append(StopStreams(tuple(active), reason))
    if was_answered:
        effects.append(StopMedia(call))
    effects.extend(forking.stop_fork(call))
    effects.extend(sip.stop_siprec(call))
    effects.extend(ai.call_ended(call, source))
    effects.extend(queueing.on_end(ctx, call))
    effects.extend(leave_bridge(ctx, call))
    return Outcome(OK, tuple(effects))


def end_call(ctx: CommandContext, call: Call, *, cause: str, source: str) -> tuple[Effect, ...]:
    """The call ends now (``call.hangup`` with ``cause`` and ``source``), with all that goes with it."""
    return _end(ctx, call, cause=cause, source=source).effects


def leave_bridge(ctx: CommandContext, call: Call) -> list[Effect]:
    """``call`` leaves its bridge (it hung up, or is bridged elsewhere): the legs stop hearing each other and the
    other leg does what its bridge said (``Unbridge``: hang up, by default). A leg that ``call`` was dialing to
    bridge with (transfer) is cancelled if the call ended, and a call waiting to be bridged no longer waits."""
    effects: list[Effect] = []
    if not call.is_alive:
        ringing, call.transferring = call.transferring, None
        if ringing is not None and ringing.state is CallState.BRIDGING:
            effects.extend(_end(ctx, ringing, cause="originator_cancel", source="caller").effects)
        waited, call.bridge_on_answer = call.bridge_on_answer, None
        if waited is not None and waited.transferring is call:
            waited.transferring = None
        for leg in call.supervised:  # a supervisor that hangs up leaves the call it supervised
            effects.extend((Disconnect(leg, call), Disconnect(call, leg)))
            if call in leg.supervisors:
                leg.supervisors.remove(call)
        call.supervised = ()
        for supervisor in call.supervisors:  # a supervised leg that ends: its supervisors hear it no more
            effects.extend((Disconnect(call, supervisor), Disconnect(supervisor, call)))
            supervisor.supervised = tuple(leg for leg in supervisor.supervised if leg is not call)
        call.supervisors.clear()
    other = call.bridged_to
    if other is None:
        return effects
    call.bridged_to = other.bridged_to = None
    effects.extend((Disconnect(call, other), Disconnect(other, call)))
    if other.is_alive and other.unbridge is Unbridge.HANGUP:
        effects.extend(_end(ctx, other, cause="normal_clearing", source="unknown").effects)  # Telnyx ends it
    return effects


# reject's cause -> the hangup_cause of its call.hangup.
REJECT_CAUSES = {"CALL_REJECTED": "call_rejected", "USER_BUSY": "user_busy"}


def reject(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Refuse a ringing incoming call: it ends with call_rejected or user_busy, never answered."""
    _require_ringing(call, "rejected")
    note_client_state(call, body)
    return _end(ctx, call, cause=REJECT_CAUSES[body["cause"]], source=events.app_hangup_source(call))


def client_state_update(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """The client_state later webhooks echo; nothing else happens (no webhook)."""
    note_client_state(call, body)
    return Outcome(OK)
