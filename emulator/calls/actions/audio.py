"""Commands that play audio on the call: speak, playback_start, playback_stop and send_dtmf (pure).

Each queues (or stops) a clip in the call's media (``media/call_audio.py``); the webhooks
(``call.speak.*``, ``call.playback.*``) are sent when the clip really starts and ends on the call's timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.actions.context import OK, CommandContext, clip_key, ensure_media, note_client_state
from emulator.calls.actions.transcription import spoken_words
from emulator.calls.effects import ClipRequest, Outcome, PlayClip, StopClips
from emulator.calls.models import Call
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed

# target_legs: which legs hear the audio. On a call with one leg, "self" is its far end: the caller.
HEARD_BY_CALLER = frozenset({"self", "both"})


def speak(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Text to speech, queued after the audio the call is already playing."""
    note_client_state(call, body)
    loop = body.get("loop", 1)
    ssml = body.get("payload_type", "text") == "ssml"
    clip = ClipRequest(
        key=clip_key(call, "speak"),
        kind="speak",
        text=body["payload"],
        voice=body["voice"],
        language=body.get("language"),
        ssml=ssml,
        transcript=spoken_words(body["payload"], ssml),
        loops=None if loop == "infinity" else int(loop),
        heard_by_caller=body.get("target_legs", "self") in HEARD_BY_CALLER,
        stop=body.get("stop") if body.get("stop") in ("current", "all") else None,
    )
    return Outcome(OK, (*ensure_media(call), PlayClip(call, clip)))


def playback_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """An audio file (audio_url, media_name or playback_content), queued or overlaid."""
    sources = [name for name in ("audio_url", "media_name", "playback_content") if body.get(name)]
    if not sources:
        detail = "One of audio_url, media_name or playback_content is required."
        raise ValidationFailed([Problem("10004", "Missing required parameter", detail, "/audio_url")])
    if len(sources) > 1:
        detail = f"Give one of audio_url, media_name or playback_content, not {' and '.join(sources)}."
        raise ValidationFailed([Problem("10015", "Invalid parameters", detail, f"/{sources[1]}")])
    note_client_state(call, body)
    loop = body.get("loop", 1)
    clip = ClipRequest(
        key=clip_key(call, "playback"),
        kind="playback",
        audio_url=body.get("audio_url"),
        media_name=body.get("media_name"),
        content=body.get("playback_content"),
        cache=body.get("cache_audio", True),
        loops=None if loop == "infinity" else int(loop),
        overlay=body.get("overlay", False),
        heard_by_caller=body.get("target_legs", "self") in HEARD_BY_CALLER,
        stop=body.get("stop") if body.get("stop") in ("current", "all") else None,
    )
    return Outcome(OK, (*ensure_media(call), PlayClip(call, clip)))


def playback_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Stop the playback playing now, or every queued one; each ends with status cancelled."""
    note_client_state(call, body)
    which = body.get("stop", "all")
    return Outcome(OK, (StopClips(call, which, frozenset({"playback"}), body.get("overlay", False)),))


def suppression_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Noise suppression on: noted on the call (the control plane shows it); the audio is unchanged."""
    note_client_state(call, body)
    call.noise_suppression = body.get("direction", "inbound")
    return Outcome(OK)


def suppression_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    note_client_state(call, body)
    call.noise_suppression = None
    return Outcome(OK)


def send_dtmf(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """DTMF tones from the app's side: the caller hears them at once, over anything else playing."""
    note_client_state(call, body)
    clip = ClipRequest(
        key=clip_key(call, "dtmf"),
        kind="dtmf",
        digits=body["digits"],
        duration_ms=int(body.get("duration_millis", 250)),  # JSON Schema's integer takes 250.0 too
        overlay=True,
    )
    return Outcome(OK, (*ensure_media(call), PlayClip(call, clip)))
