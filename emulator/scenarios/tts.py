"""Speech for ``say`` steps: espeak-ng, run once per text and voice, its audio kept in a cache.

A ``say`` step's audio is looked up by a key (a hash of the engine, voice, words per minute, pitch and text):

1. in the scenario's **bundle**, ``audio/tts/<key>.flac`` next to the scenario file. Shipped scenarios carry
   theirs, so they load where espeak-ng is not installed; ``telnyx-emulator scenario check --bundle-speech``
   writes them for any scenario;
2. in the **user cache**: ``$TELNYX_EMULATOR_TTS_CACHE``, else ``$XDG_CACHE_HOME/telnyx-emulator/tts``, else
   ``~/.cache/telnyx-emulator/tts``;
3. else espeak-ng speaks it, and the result goes to the user cache (best effort: a read-only home only means
   espeak-ng runs again next time).

Audio is kept as 16 kHz mono 16-bit FLAC, trimmed of leading and trailing silence, at espeak-ng's own level
(``say``'s level is applied when rendering). A fresh synthesis returns exactly what the cache gives back later,
so a scenario sounds the same on its first run and on every run after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from emulator.scenarios import synth

ENGINE: Final = "espeak-ng"
INSTALL_HINT: Final = "install the espeak-ng package: apt-get install espeak-ng, or brew install espeak-ng"
STORE_RATE: Final = 16000
BUNDLE_DIR: Final = Path("audio") / "tts"
# Part of every key: bump it when the stored form changes (rate, trimming), so old entries are not reused.
FORMAT_VERSION: Final = 1
# Quieter than this (about -46 dBFS, sox's "0.5%") at either end is silence, trimmed so that a script's
# `silence` steps alone decide the pauses.
TRIM_THRESHOLD: Final = 0.005
SYNTH_TIMEOUT_S: Final = 60.0


DEFAULT_VOICE: Final = "en-us"
DEFAULT_WPM: Final = 160
DEFAULT_PITCH: Final = 50


@dataclass(frozen=True, slots=True)
class Voice:
    name: str = DEFAULT_VOICE  # an espeak-ng voice: en-us, en-gb, fr, de, en-us+f3 (a variant), ...
    wpm: int = DEFAULT_WPM  # words per minute
    pitch: int = DEFAULT_PITCH  # 0-99


class SpeechError(Exception):
    """Speech that cannot be had; ``field`` is the ``say`` field to blame (``text`` or ``voice``)."""

    def __init__(self, message: str, field: str = "text") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True, eq=False)
class Speech:
    samples: NDArray[np.float32]  # mono, at sample_rate, read-only
    sample_rate: int
    origin: str  # where it came from: "bundle", "cache" or "espeak-ng"


Synthesizer = Callable[[str, Voice], tuple[NDArray[np.float32], int]]  # text, voice -> mono samples, rate


def key(text: str, voice: Voice) -> str:
    material = {"engine": ENGINE, "format": FORMAT_VERSION, "voice": voice.name, "wpm": voice.wpm}
    material |= {"pitch": voice.pitch, "text": text}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("TELNYX_EMULATOR_TTS_CACHE"):
        return Path(environ["TELNYX_EMULATOR_TTS_CACHE"])
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "telnyx-emulator" / "tts"


def espeak(text: str, voice: Voice, *, executable: str = ENGINE) -> tuple[NDArray[np.float32], int]:
    """Run espeak-ng; raises SpeechError naming the package when it is not installed."""
    exe = shutil.which(executable)
    if exe is None:
        raise SpeechError(f"cannot synthesize speech: {ENGINE} is not installed ({INSTALL_HINT})")
    with tempfile.TemporaryDirectory(prefix="telnyx-emulator-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        # Text on stdin, never argv: a text starting with "-" must not read as an option. -b 1: it is UTF-8.
        argv = [exe, "-v", voice.name, "-s", str(voice.wpm), "-p", str(voice.pitch), "-b", "1", "-w", str(out)]
        try:
            done = subprocess.run(
                [*argv, "--stdin"], input=text.encode(), capture_output=True, timeout=SYNTH_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SpeechError(f"{ENGINE} failed: {e}") from None
        problem = done.stderr.decode(errors="replace").strip()
        if "voice does not exist" in problem:
            raise SpeechError(f"{ENGINE} has no voice {voice.name!r}", field="voice")
        if done.returncode != 0 or not out.exists():
            raise SpeechError(f"{ENGINE} failed: {problem or f'exit status {done.returncode}'}")
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)), int(rate)


class SpeechCache:
    """Finds or makes the audio of a text; keeps what it found in memory for the life of the object."""

    def __init__(self, cache_dir: Path | None = None, synthesize: Synthesizer = espeak) -> None:
        self.cache_dir = cache_dir
        self.synthesize = synthesize
        self._memo: dict[str, Speech] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpeechCache:
        return cls(default_cache_dir(os.environ if environ is None else environ))

    def get(self, text: str, voice: Voice, bundle_dir: Path | None = None) -> Speech:
        name = f"{key(text, voice)}.flac"
        for origin, directory in (("bundle", bundle_dir), ("cache", self.cache_dir)):
            if directory is not None and (directory / name).is_file():
                return self._read(directory / name, origin)
        memo = self._memo.get(name)
        if memo is not None:
            return memo
        samples, rate = self.synthesize(text, voice)
        pcm = _prepared(samples, rate)
        if self.cache_dir is not None:
            _write_atomic(self.cache_dir / name, pcm)
        speech = Speech(_as_float(pcm), STORE_RATE, "espeak-ng")
        self._memo[name] = speech
        return speech

    def bundle(self, text: str, voice: Voice, bundle_dir: Path) -> Path:
        """Make sure ``bundle_dir`` holds this speech (so it loads without espeak-ng); returns the file."""
        path = bundle_dir / f"{key(text, voice)}.flac"
        if not path.is_file():
            speech = self.get(text, voice)
            bundle_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, synth.to_int16(speech.samples), best_effort=False)
        return path

    def _read(self, path: Path, origin: str) -> Speech:
        memo = self._memo.get(path.name)
        if memo is not None and memo.origin == origin:
            return memo
        try:
            data, rate = sf.read(path, dtype="int16", always_2d=True)
        except (OSError, RuntimeError) as e:  # soundfile.LibsndfileError is a RuntimeError
            raise SpeechError(f"cannot read cached speech {path}: {e}") from None
        speech = Speech(_as_float(np.ascontiguousarray(data[:, 0])), int(rate), origin)
        self._memo[path.name] = speech
        return speech


def _prepared(samples: NDArray[np.float32], rate: int) -> NDArray[np.int16]:
    """Trimmed, at STORE_RATE, quantised to 16 bits: exactly what the cache file will hold."""
    loud = np.flatnonzero(np.abs(samples) > TRIM_THRESHOLD)
    if loud.size == 0:
        raise SpeechError(f"{ENGINE} produced no audible speech for this text")
    trimmed = np.ascontiguousarray(samples[loud[0] : loud[-1] + 1], dtype=np.float32)
    return synth.to_int16(synth.resample(trimmed, rate, STORE_RATE))


def _as_float(pcm: NDArray[np.int16]) -> NDArray[np.float32]:
    out = pcm.astype(np.float32) / np.float32(32768.0)
    out.setflags(write=False)
    return out


def _write_atomic(path: Path, pcm: NDArray[np.int16], *, best_effort: bool = True) -> None:
    # A temporary file renamed into place: a reader never sees half a file, concurrent writers never clash.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".flac")
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; cached speech is shared, bundled speech is committed
        try:
            sf.write(tmp, pcm, STORE_RATE, format="FLAC", subtype="PCM_16")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, RuntimeError):
        if not best_effort:
            raise
