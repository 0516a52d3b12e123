"""Transcription commands: transcription_start and transcription_stop (pure).

No speech is recognised: the emulator knows what is said. The caller's ``say`` steps (the inbound track) and
the app's ``speak`` text (the outbound track) reach the app as ``call.transcription`` webhooks when they have
been heard on the call's timeline (``calls/reactions.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from emulator.calls.actions.context import OK, CommandContext, ensure_media, note_client_state
from emulator.calls.effects import Outcome
from emulator.calls.models import Call, Transcription
from emulator.calls.store import CallStore
from emulator.errors import Problem, ValidationFailed

# The legacy engine names Telnyx still takes.
LEGACY_ENGINES = {"A": "Google", "B": "Telnyx"}


def settings(body: Mapping[str, Any]) -> Transcription:
    """transcription_start's body (or answer's and dial's transcription_config) as the call's settings."""
    config = body.get("transcription_engine_config") or {}
    engine = body.get("transcription_engine") or config.get("transcription_engine") or "Google"
    return Transcription(
        tracks=body.get("transcription_tracks", "inbound"),
        engine=LEGACY_ENGINES.get(engine, engine),
        interim_results=bool(config.get("interim_results", False)),
        language=config.get("language"),
    )


def transcription_start(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Transcribe the call from now on; a second start replaces the settings of the first."""
    note_client_state(call, body)
    call.transcription = settings(body)
    return Outcome(OK, ensure_media(call))


def transcription_stop(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    if call.transcription is None:
        raise ValidationFailed([Problem("10015", "Not transcribing", "The call is not being transcribed.", None)])
    note_client_state(call, body)
    call.transcription = None
    return Outcome(OK)


_TAG = re.compile(r"<[^>]*>")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([,.!?;:])")


def spoken_words(text: str, ssml: bool) -> str:
    """What a listener hears of a speak payload: SSML's tags are not said."""
    if ssml:
        text = _TAG.sub(" ", text)
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(text.split()))
