"""Gather commands: gather, gather_using_speak, gather_using_audio, gather_stop (pure).

The caller's keys (its scenario's ``dtmf`` steps) are collected by the call's media (``media/gather.py``);
``call.gather.ended`` says how it ended. A prompt plays first: speech, or an audio file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from emulator.calls.actions.audio import HEARD_BY_CALLER
from emulator.calls.actions.context import OK, CommandContext, clip_key, ensure_media, note_client_state
from emulator.calls.actions.transcription import spoken_words
from emulator.calls.effects import ClipRequest, GatherRequest, Outcome, StartGather, StopGather
from emulator.calls.models import Call
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed
from emulator.media.gather import GatherRules


def gather(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    return _start(call, body, None)


def gather_using_speak(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    key = clip_key(call, "gather")
    ssml = body.get("payload_type", "text") == "ssml"
    prompt = ClipRequest(
        key=key,
        kind="gather",  # the prompt of a gather has no speak webhooks of its own
        text=body["payload"],
        voice=body["voice"],
        language=body.get("language"),
        ssml=ssml,
        transcript=spoken_words(body["payload"], ssml),
    )
    invalid = None
    if body.get("invalid_payload"):
        invalid = replace(prompt, key=f"{key}-invalid", text=body["invalid_payload"])
        invalid = replace(invalid, transcript=spoken_words(invalid.text, ssml))
    return _start(call, body, prompt, key, invalid)


def gather_using_audio(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    key = clip_key(call, "gather")
    prompt = ClipRequest(
        key=key,
        kind="playback",  # Telnyx reports the prompt's call.playback.started/ended
        audio_url=body.get("audio_url"),
        media_name=body.get("media_name"),
        heard_by_caller=body.get("target_legs", "self") in HEARD_BY_CALLER,
    )
    if prompt.audio_url is None and prompt.media_name is None:
        detail = "One of audio_url or media_name is required."
        raise ValidationFailed([Problem("10004", "Missing required parameter", detail, "/audio_url")])
    invalid = None
    if body.get("invalid_audio_url") or body.get("invalid_media_name"):
        url, name = body.get("invalid_audio_url"), body.get("invalid_media_name")
        invalid = replace(prompt, key=f"{key}-invalid", audio_url=url, media_name=None if url else name)
    return _start(call, body, prompt, key, invalid)


def gather_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """End the gather running now: call.gather.ended with status cancelled and the keys so far."""
    note_client_state(call, body)
    return Outcome(OK, (StopGather(call),))


def _start(
    call: Call,
    body: Mapping[str, Any],
    prompt: ClipRequest | None,
    key: str | None = None,
    invalid: ClipRequest | None = None,
) -> Outcome:
    note_client_state(call, body)
    defaults = GatherRules()
    rules = GatherRules(
        minimum_digits=body.get("minimum_digits", defaults.minimum_digits),
        maximum_digits=body.get("maximum_digits", defaults.maximum_digits),
        terminating_digit=body.get("terminating_digit", defaults.terminating_digit),
        valid_digits=body.get("valid_digits", defaults.valid_digits),
        timeout_ms=body.get("timeout_millis", defaults.timeout_ms),
        initial_timeout_ms=body.get("initial_timeout_millis", defaults.initial_timeout_ms),
        inter_digit_timeout_ms=body.get("inter_digit_timeout_millis", defaults.inter_digit_timeout_ms),
    )
    # gather has no prompt to repeat: one try. The others try maximum_tries times (Telnyx's default: 3).
    tries = int(body.get("maximum_tries", 3)) if prompt is not None else 1
    request = GatherRequest(key or clip_key(call, "gather"), rules, prompt, tries, invalid)
    return Outcome(OK, (*ensure_media(call), StartGather(call, request)))
