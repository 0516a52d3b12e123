"""The audio of the caller's live steps (``POST /_emulator/calls/{call_control_id}/caller``), as scenario steps.

Each action becomes the step a scenario would use (docs/scenarios.md), so it sounds, and is reported, exactly as
one: ``{"dtmf": "12#"}`` is a ``dtmf`` step (100 ms tones, 100 ms apart), ``{"say": "text"}`` a ``say`` step in
its default voice, ``{"play": "file-or-url"}`` a ``play`` step, ``{"silence_ms": 500}`` a ``silence`` step::

    step = await live_step("say", "Two adults, please", http=client, scenario_dir=Path("scenarios"))

Speech is looked up as a scenario's is (``emulator.scenarios.tts``): in the ``audio/tts`` bundle of the scenario
folder or of the shipped scenarios, then in the user cache, else espeak-ng speaks it (in a worker thread). A
``play`` that starts with ``http://`` or ``https://`` is fetched with the emulator's HTTP client; anything else
is a file on the emulator's machine, a relative path being taken from the scenario folder (``--scenario-dir``),
where scenarios keep their audio, or else from the shipped scenarios' (``audio/hello.wav``). Files are decoded by
soundfile (WAV, FLAC, OGG, MP3, ...) in a worker thread.
A step that cannot be had raises ``LiveAudioError`` saying why.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import soundfile as sf

from emulator.scenarios import tts
from emulator.scenarios.loader import default_scenario_dir, load_audio, speak
from emulator.scenarios.steps import AudioStep, Dtmf, Play, Silence

# A live step lasts at most as long as a scenario step may (the scenario schema's duration_ms).
FETCH_TIMEOUT_S: Final = 15.0  # a file fetched for the caller, whole
MAX_STEP_MS: Final = 60_000  # a live step is a prompt's answer, not a recording: rendered on the event loop
MAX_FILE_BYTES: Final = 50 * 2**20  # as playback_start's audio_url (media/clip_player.py)


class LiveAudioError(Exception):
    """The audio of a live step cannot be had; ``str(e)`` says why, for the field's 422."""


async def live_step(
    action: str,
    value: object,
    *,
    http: httpx.AsyncClient,
    scenario_dir: Path,
    speech: tts.SpeechCache | None = None,
) -> AudioStep:
    """The step for one caller action (``dtmf``, ``say``, ``play`` or ``silence_ms``), its audio made or fetched."""
    if action == "dtmf":
        return Dtmf(str(value))
    if action == "silence_ms":  # JSON Schema's integers include 500.0
        assert isinstance(value, int | float)
        return Silence(int(value))
    if action == "say":
        return await asyncio.to_thread(_say, str(value), speech or tts.SpeechCache.from_env(), scenario_dir)
    if action == "play":
        source = str(value)
        if source.startswith(("http://", "https://")):
            step = await asyncio.to_thread(_decoded, await _fetch(http, source), source)
        else:
            step = await asyncio.to_thread(_read, _local(source, scenario_dir), source)
        if step.duration_ms > MAX_STEP_MS:
            seconds = f"{step.duration_ms / 1000:.0f} s"
            raise LiveAudioError(f"{source} lasts {seconds}; a live step lasts at most {MAX_STEP_MS // 1000} s.")
        return step
    raise ValueError(f"not a caller action with audio: {action!r}")


def _say(text: str, speech: tts.SpeechCache, scenario_dir: Path) -> AudioStep:
    voice = tts.Voice()
    name = f"{tts.key(text, voice)}.flac"
    bundles = (scenario_dir / tts.BUNDLE_DIR, default_scenario_dir() / tts.BUNDLE_DIR)
    bundle = next((folder for folder in bundles if (folder / name).is_file()), None)
    try:
        return speak(text, speech, bundle)
    except tts.SpeechError as exc:
        raise LiveAudioError(f"Cannot speak it: {exc}.") from None


async def _fetch(http: httpx.AsyncClient, url: str) -> bytes:
    """The file at ``url``, read as it arrives: refused past MAX_FILE_BYTES or FETCH_TIMEOUT_S (a server that
    dribbles a byte every few seconds does not hold the caller's request open)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_S), http.stream("GET", url, follow_redirects=True) as response:
            if response.status_code != 200:
                raise LiveAudioError(f"{url} answered HTTP {response.status_code}.")
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise LiveAudioError(f"{url} is larger than {MAX_FILE_BYTES // 2**20} MB.")
                chunks.append(chunk)
    except TimeoutError:
        raise LiveAudioError(f"{url} took longer than {FETCH_TIMEOUT_S:g} s to fetch.") from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # refused, unresolvable, a URL httpx refuses
        raise LiveAudioError(f"{url} could not be fetched: {type(exc).__name__}.") from None
    return b"".join(chunks)


def _local(name: str, scenario_dir: Path) -> Path:
    """A file's path: as given when absolute, else from the scenario folder, else from the shipped scenarios'."""
    folders = (scenario_dir, default_scenario_dir())
    return next((folder / name for folder in folders if (folder / name).is_file()), scenario_dir / name)


def _read(path: Path, name: str) -> Play:
    try:
        if path.exists() and not path.is_file():  # a FIFO or a device would block the reading thread for good
            raise LiveAudioError(f"Cannot read {name!r}: not a file.")
        if path.is_file():
            _check_length(name, sf.info(str(path)))  # before decoding it all
        return load_audio(path, file=name)
    except (OSError, RuntimeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        reason = getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or str(exc)
        raise LiveAudioError(f"Cannot read {name!r}: {str(reason).strip().rstrip('.')}.") from None


def _check_length(name: str, info: Any) -> None:  # soundfile.info(): frames, samplerate, duration
    if info.frames > MAX_STEP_MS * info.samplerate // 1000:
        raise LiveAudioError(f"{name} lasts {info.duration:.0f} s; a live step lasts at most {MAX_STEP_MS // 1000} s.")


def _decoded(data: bytes, url: str) -> Play:
    not_audio = f"{url} is not an audio file soundfile can read (WAV, FLAC, OGG, MP3)."
    try:
        info = sf.info(io.BytesIO(data))
    except (RuntimeError, TypeError, ValueError):  # soundfile.LibsndfileError is a RuntimeError
        raise LiveAudioError(not_audio) from None
    _check_length(url, info)  # before decoding it all
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError):
        raise LiveAudioError(not_audio) from None
    if len(samples) == 0:
        raise LiveAudioError(f"{url} holds no audio.")
    mono = np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32))
    mono.setflags(write=False)
    return Play(file=url, path=Path(url), samples=mono, sample_rate=int(rate))  # no file: the URL stands in
