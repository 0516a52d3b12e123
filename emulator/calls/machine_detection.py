"""Answering machine detection on a dialed call (dial's ``answering_machine_detection``). Pure.

No audio is analysed: the scenario's callee says who answers (``answered_by``), how long it speaks first
(``greeting_ms``) and whether a beep follows. This module says which webhooks that gives and when, in
milliseconds after the answer, from the detection settings as a detector would use them:

- a person is recognised once its short greeting is followed by ``after_greeting_silence_millis`` of silence;
- a machine once it has talked for ``greeting_duration_millis``;
- anything else (silence, a fax, a mumble) stays ``not_sure`` until ``total_analysis_time_millis`` runs out,
  and no decision comes later than that;
- a machine's greeting ends ``greeting_ms`` after the answer (``beep_detected`` when a beep follows it, at the
  beep's end), reported after the verdict.

Modes: ``detect`` and ``detect_words`` send ``call.machine.detection.ended``; ``greeting_end`` and
``detect_beep`` also ``call.machine.greeting.ended`` for a machine; ``premium`` sends
``call.machine.premium.detection.ended``, and ``call.machine.premium.greeting.ended`` when a beep is heard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.effects import Cue
from emulator.scenarios.loader import Callee

BEEP_MS = 500  # how long a voicemail's beep lasts
DEFAULTS = {
    "after_greeting_silence_millis": 800,
    "greeting_duration_millis": 3500,
    "total_analysis_time_millis": 3500,
    "greeting_total_analysis_time_millis": 5000,
}
_STANDARD = {"human": "human", "human_business": "human", "machine": "machine"}  # anything else: not_sure
_PREMIUM = {
    "human": "human_residence",
    "human_business": "human_business",
    "machine": "machine",
    "silence": "silence",
    "fax": "fax_detected",
    "not_sure": "not_sure",
}


def detection_cues(mode: str, config: Mapping[str, Any], callee: Callee) -> list[tuple[int, Cue]]:
    """The webhooks detection sends on this call, each with when (ms after the answer), in time order."""
    if mode == "disabled":
        return []
    settings = {**DEFAULTS, **{key: int(value) for key, value in config.items() if key in DEFAULTS}}
    total = settings["total_analysis_time_millis"]
    who = callee.answered_by
    if who in ("human", "human_business"):
        verdict_at = min(callee.greeting + settings["after_greeting_silence_millis"], total)
    elif who == "machine":
        verdict_at = min(settings["greeting_duration_millis"], callee.greeting, total)
    else:
        verdict_at = total
    greeting_end = callee.greeting + (BEEP_MS if callee.beep else 0)
    cues: list[tuple[int, Cue]] = []
    if mode == "premium":
        cues.append((verdict_at, Cue("call.machine.premium.detection.ended", _PREMIUM[who])))
        if who == "machine" and callee.beep:
            cues.append((max(verdict_at, greeting_end), Cue("call.machine.premium.greeting.ended", "beep_detected")))
        return cues
    cues.append((verdict_at, Cue("call.machine.detection.ended", _STANDARD.get(who, "not_sure"))))
    if mode in ("greeting_end", "detect_beep") and who == "machine":
        greeting_limit = settings["greeting_total_analysis_time_millis"]
        if greeting_end > greeting_limit:  # the greeting outlasted the analysis: its end was never heard
            cues.append((greeting_limit, Cue("call.machine.greeting.ended", "not_sure")))
        else:
            result = "beep_detected" if callee.beep else "ended"
            cues.append((max(verdict_at, greeting_end), Cue("call.machine.greeting.ended", result)))
    return cues
