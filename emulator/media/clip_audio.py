"""The audio of the call's clips: speech for ``speak`` (espeak-ng), tones for ``send_dtmf``, files for
``playback_start`` (WAV or MP3, decoded by soundfile).

Telnyx speaks with cloud voices the emulator does not have, so a voice maps to a plausible espeak-ng voice:
``female``/``male`` and the ``language`` field pick the language and a female or male variant; a provider voice
(``AWS.Polly.Joanna``, ``Azure.en-US-AvaNeural``, ``Telnyx.KokoroTTS.af``) keeps the language its name carries
when it has one. A voice that maps to nothing speaks American English, with a note in the log. Without
espeak-ng, noise shaped like speech of the estimated length stands in (a warning, once per process), so an app's
timing still holds. SSML is spoken as its text.
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import soundfile
from numpy.typing import NDArray

from emulator.scenarios import synth
from emulator.scenarios.tts import DEFAULT_WPM, SpeechCache, SpeechError, Voice

log = logging.getLogger(__name__)

PCM = NDArray[np.int16]
SPEECH_LEVEL_DBFS = -6.0
DTMF_LEVEL_DBFS = -10.0
DTMF_GAP_MS = 100  # between two digits the app sends
PAUSES_MS = {"w": 500, "W": 1000}
# Telnyx languages -> espeak-ng voices (the language's default speaker).
LANGUAGES = {
    "arb": "ar", "cmn-CN": "cmn", "cy-GB": "cy", "da-DK": "da", "de-DE": "de", "en-AU": "en-au",
    "en-GB": "en-gb", "en-GB-WLS": "en-gb", "en-IN": "en-in", "en-US": "en-us", "es-ES": "es",
    "es-MX": "es-419", "es-US": "es-419", "fr-CA": "fr", "fr-FR": "fr", "hi-IN": "hi", "is-IS": "is",
    "it-IT": "it", "ja-JP": "ja", "ko-KR": "ko", "nb-NO": "nb", "nl-NL": "nl", "pl-PL": "pl", "pt-BR": "pt-br",
    "pt-PT": "pt", "ro-RO": "ro", "ru-RU": "ru", "sv-SE": "sv", "tr-TR": "tr",
}  # fmt: skip
_LOCALE = re.compile(r"([a-z]{2,3})-([A-Z]{2})")
_FEMALE = {"female", "joanna", "salli", "kendra", "kimberly", "ivy", "amy", "emma", "olivia", "ava", "jenny", "af"}
_warned_no_engine = False


class ClipUnavailable(Exception):
    """A clip's audio cannot be had: ``status`` is what its ended webhook reports, ``detail`` why."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def espeak_voice(voice: str, language: str | None) -> str:
    """The espeak-ng voice that stands in for a Telnyx ``voice`` and ``language``."""
    parts = voice.split(".")
    name = parts[-1]
    found = _LOCALE.search(voice)
    locale = f"{found.group(1)}-{found.group(2)}" if found else language or "en-US"
    base = LANGUAGES.get(locale)
    if base is None:
        log.info("speak: no espeak-ng language for %r (voice %r); speaking en-us", locale, voice)
        base = "en-us"
    if len(parts) == 1 and voice not in ("female", "male"):
        log.info("speak: voice %r is not a Telnyx voice name; speaking %s", voice, base)
    female = voice == "female" or any(word in name.lower() for word in _FEMALE)
    return f"{base}+f3" if female else base


def speech(cache: SpeechCache, text: str, voice: str, language: str | None, ssml: bool, rate: int) -> PCM:
    """``text`` spoken at ``rate``, peak-normalised to SPEECH_LEVEL_DBFS."""
    if ssml:
        text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    try:
        spoken = cache.get(text, Voice(espeak_voice(voice, language)))
    except SpeechError as exc:
        return _stand_in(text, rate, str(exc))
    samples = synth.resample(spoken.samples, spoken.sample_rate, rate)
    return synth.to_int16(samples * synth.peak_gain(samples, SPEECH_LEVEL_DBFS))


def dtmf_tones(digits: str, duration_ms: int, rate: int) -> PCM:
    """The digits as tone pairs of ``duration_ms``, a gap between them; ``w``/``W`` are pauses."""
    parts: list[PCM] = []
    for char in digits:
        if char in PAUSES_MS:
            parts.append(synth.silence(PAUSES_MS[char], rate))
            continue
        if parts:
            parts.append(synth.silence(DTMF_GAP_MS, rate))
        parts.append(synth.dtmf_digit(char, duration_ms, DTMF_LEVEL_DBFS, rate))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def beep(rate: int) -> PCM:
    """The beep a recording starts with (play_beep): 1 kHz, 250 ms."""
    return synth.tone(1000, 250, DTMF_LEVEL_DBFS, rate)


def _stand_in(text: str, rate: int, why: str) -> PCM:
    global _warned_no_engine
    if not _warned_no_engine:
        _warned_no_engine = True
        log.warning("speak: %s; noise shaped like speech stands in for it", why)
    seconds = max(0.5, len(text.split()) * 60 / DEFAULT_WPM)
    n = int(seconds * rate)
    noise = synth.noise("pink", -20.0, n, rate, seed=len(text))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(n) / rate)  # ~4 syllables a second
    return synth.to_int16(noise * syllables)


def decode_file(data: bytes, rate: int) -> PCM:
    """A WAV or MP3 file's audio, mixed to mono at ``rate``; ClipUnavailable("failed") for anything else."""
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as file:
            kind, file_rate = file.format, file.samplerate
            samples = file.read(dtype="float32", always_2d=True) if kind in ("WAV", "MP3") else None
    except (RuntimeError, TypeError, ValueError):
        raise ClipUnavailable("failed", "The audio is not a WAV or MP3 file.") from None
    if samples is None:
        raise ClipUnavailable("failed", f"The audio is a {kind} file; Telnyx plays WAV and MP3.")
    return synth.to_int16(synth.resample(samples.mean(axis=1), int(file_rate), rate))
