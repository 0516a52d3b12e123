"""Recording commands: record_start, record_stop, record_pause, record_resume (pure).

The call's media records (``media/call_recorder.py``); when a recording ends (record_stop, its max_length,
the call's end) the emulator writes the WAV or MP3 file, serves it at the URLs of ``call.recording.saved``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.actions.context import OK, CommandContext, ensure_media, note_client_state, recording_request
from emulator.calls.effects import Outcome, PauseRecording, StartRecording, StopRecording
from emulator.calls.models import Call
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed


def record_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    recording_id = ctx.ids.uuid4()
    call.recordings.append(recording_id)
    request = recording_request(
        ctx,
        call,
        recording_id,
        format=body["format"],
        channels=body["channels"],
        track=body.get("recording_track", "both"),
        play_beep=body.get("play_beep", True),
        max_length=body.get("max_length", 0),
        file_name=body.get("custom_file_name"),
    )
    return Outcome(OK, (*ensure_media(call), StartRecording(call, request)))


def record_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """End the recording (or every one): its file is written and call.recording.saved sent."""
    note_client_state(call, body)
    ids = _recordings(call, body)
    for recording_id in ids:
        call.recordings.remove(recording_id)
    return Outcome(OK, tuple(StopRecording(call, recording_id) for recording_id in ids))


def record_pause(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    return Outcome(OK, tuple(PauseRecording(call, key, True) for key in _recordings(call, body)))


def record_resume(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    return Outcome(OK, tuple(PauseRecording(call, key, False) for key in _recordings(call, body)))


def _recordings(call: Call, body: Mapping[str, Any]) -> list[str]:
    wanted = body.get("recording_id")
    ids = [key for key in call.recordings if wanted is None or key.lower() == str(wanted).lower()]
    if not ids:
        detail = "The call is not being recorded." if wanted is None else "No recording with this recording_id."
        pointer = None if wanted is None else "/recording_id"
        raise ValidationFailed([Problem("10015", "Not recording", detail, pointer)])
    return ids
