"""What a call does when something happens on its media: pure functions returning an ``Outcome``, like commands.

The runtime calls these from its stream and call-media observers and only carries out the effects, so every
webhook about media (``streaming.*``, ``call.dtmf.received``, the caller's ``call.hangup``) is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from emulator.calls import events
from emulator.calls.actions import ai, pay, queueing
from emulator.calls.actions.call import caller_hangs_up, referred_away, time_limit_reached
from emulator.calls.actions.context import OK, CommandContext
from emulator.calls.effects import Cue, Emit, GatherRequest, Outcome, StartGather
from emulator.calls.models import Call, StreamEndReason, StreamRecord, StreamState
from emulator.scenarios.cursor import End
from emulator.texml.commands import PAUSE_CUE


def stream_started(record: StreamRecord) -> Outcome:
    call = record.call
    return Outcome(OK, (Emit(call, "streaming.started", events.streaming_started(call, record)),))


def stream_ended(record: StreamRecord) -> Outcome:
    call = record.call
    if record.state is StreamState.FAILED:
        return Outcome(OK, (Emit(call, "streaming.failed", events.streaming_failed(call, record)),))
    return Outcome(OK, (Emit(call, "streaming.stopped", events.streaming_stopped(call, record)),))


def dtmf_heard(call: Call, digit: str) -> Outcome:
    """The caller pressed a key: one webhook per key press on the call, however many streams hear it."""
    if not call.is_alive:
        return Outcome(OK)
    return Outcome(OK, (Emit(call, "call.dtmf.received", events.dtmf_received(call, digit)),))


def caller_done(ctx: CommandContext, call: Call, end: End) -> Outcome:
    """The caller's script ended: a hangup step, a failed wait, or a script that ran out (``at_end: hangup``)."""
    if end.reason == "hangup":
        return caller_hangs_up(ctx, call, end.cause or "normal_clearing")
    if end.reason == "failed":
        return caller_hangs_up(ctx, call, "normal_clearing", StreamEndReason.SCRIPT_FAILED, end.error)
    return caller_hangs_up(ctx, call, "normal_clearing", StreamEndReason.COMPLETED)


def clip_event(call: Call, what: str, kind: str, status: str | None, details: Mapping[str, Any]) -> Outcome:
    """A clip the call plays started or ended: ``call.speak.*`` or ``call.playback.*`` (DTMF has none); speech
    that played to its end is transcribed on the outbound track."""
    heard = what == "ended" and status == "completed" and details.get("transcript")
    # Speech without webhooks of its own (kind gather) ended: gather_using_ai counts silence from its greeting's end.
    after = ai.speech_ended(call) if what == "ended" and kind == "gather" else ()
    if heard and call.transcription is not None and call.transcription.hears("outbound"):
        said = Emit(call, "call.transcription", events.transcription(call, details["transcript"], True, "outbound"))
        return Outcome(OK, (*_clip_webhooks(call, what, kind, status, details), said, *after))
    return Outcome(OK, (*_clip_webhooks(call, what, kind, status, details), *after))


def _clip_webhooks(
    call: Call, what: str, kind: str, status: str | None, details: Mapping[str, Any]
) -> tuple[Emit, ...]:
    if kind == "speak":
        if what == "started":
            return (Emit(call, "call.speak.started", events.leg_payload(call)),)
        return (Emit(call, "call.speak.ended", events.speak_ended(call, status or "completed")),)
    if kind == "playback":
        payload = events.playback(call, details, None if what == "started" else status or "completed")
        return (Emit(call, f"call.playback.{what}", payload),)
    return ()


def caller_said(call: Call, text: str, is_final: bool) -> Outcome:
    """The far end's words were heard (a say step): ``call.transcription`` on the inbound track, if transcribed
    (a partial result half-way through only with interim_results); an AI conversation or gather hears them too."""
    heard = ai.caller_said(call, text, is_final)
    settings = call.transcription
    if not call.is_alive or settings is None or not settings.hears("inbound"):
        return Outcome(OK, heard)
    if not is_final and not settings.interim_results:
        return Outcome(OK, heard)
    said = Emit(call, "call.transcription", events.transcription(call, text, is_final, "inbound"))
    return Outcome(OK, (said, *heard))


def cue_due(ctx: CommandContext, call: Call, cue: Cue) -> Outcome:
    """A moment on the call's timeline came: its time limit (the call ends), or a webhook due then."""
    if not call.is_alive:
        return Outcome(OK)
    if cue.what == "time_limit":
        return time_limit_reached(ctx, call)
    if cue.what == queueing.QUEUE_TIMEOUT:  # max_wait_time_secs in a queue passed
        return queueing.wait_over(ctx, call, cue)
    if cue.what == ai.SILENCE_CUE:  # the caller said nothing to gather_using_ai for user_response_timeout_ms
        return ai.silence_timed_out(call, cue)
    if cue.what == PAUSE_CUE:  # a TeXML <Pause> is over: back to the call's runner (never a webhook)
        return Outcome(OK, (Emit(call, cue.what, {"token": cue.result}),))
    if cue.what.startswith("call.refer."):  # the far end's answer to the app's refer
        answered = Emit(call, cue.what, events.refer(call, int(cue.result)))
        if cue.what == "call.refer.completed":  # it has gone to the new address: the call is over
            return Outcome(OK, (answered, *referred_away(ctx, call).effects))
        return Outcome(OK, (answered,))
    return Outcome(OK, (Emit(call, cue.what, events.machine_detection(call, cue.result)),))


def recording_saved(
    call: Call, recording_id: str, channels: str, started_at: str, ended_at: str, urls: Mapping[str, str]
) -> Outcome:
    """A recording's file is written: the call no longer records it, and the app hears where it is."""
    if recording_id in call.recordings:
        call.recordings.remove(recording_id)
    payload = events.recording_saved(call, channels, started_at, ended_at, urls)
    return Outcome(OK, (Emit(call, "call.recording.saved", payload),))


def gather_ended(ctx: CommandContext, call: Call, request: GatherRequest | None, status: str, digits: str) -> Outcome:
    """A try of the gather ended: ``call.gather.ended``, or, while tries are left after a timeout or keys that
    were not valid, the next try (its invalid prompt first, after invalid keys). A step of ``pay`` goes on there."""
    if request is not None and request.key.startswith(pay.PREFIX):
        return pay.step_ended(ctx, call, status, digits)
    tries_left = request is not None and request.attempt < request.maximum_tries
    if request is not None and tries_left and status in ("timeout", "invalid") and call.is_alive:
        retry = request.invalid_prompt if status == "invalid" else None
        return Outcome(OK, (StartGather(call, replace(request, attempt=request.attempt + 1, retry_prompt=retry)),))
    return Outcome(OK, (Emit(call, "call.gather.ended", events.gather_ended(call, status, digits)),))
