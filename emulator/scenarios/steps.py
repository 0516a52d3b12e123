"""The scenario language's steps as plain, immutable data: what a scripted caller does, one step at a time.

* Audio steps — ``Silence``, ``Tone``, ``Dtmf``, ``Play``, ``Say`` — know their ``duration_ms`` and ``render``
  themselves to int16 PCM at any rate. Rendering is pure: ``Play`` and ``Say`` carry audio that was decoded or
  synthesized when the scenario loaded (``emulator.scenarios.loader``), so nothing here reads a file.
* Control steps — ``WaitFor`` (the caller waits for the app), ``Hangup``, ``Repeat`` — are walked by the stream
  engine once compiled (``emulator.scenarios.segments``, ``emulator.scenarios.cursor``).
* ``Track`` is one track's steps plus its ``Mix`` (gain and background ``Noise``).

Steps are built from YAML by ``emulator.scenarios.loader``, or directly in code (tests, tools); both give the same
defaults, which the schema's defaults must match.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final, overload

import numpy as np
from numpy.typing import NDArray

from emulator.scenarios import synth, tts
from emulator.timing import FRAME_MS

# Media time advances in whole 20 ms frames: a wait's timeout counts in them.

TONE_LEVEL_DBFS: Final = -12.0
DTMF_LEVEL_DBFS: Final = -10.0
DTMF_MS: Final = 100
DTMF_GAP_MS: Final = 100
SAY_LEVEL_DBFS: Final = -3.0

APP_AUDIO_END: Final = "app_audio_end"
APP_AUDIO_START: Final = "app_audio_start"
MARK: Final = "mark"
APP_DTMF: Final = "dtmf"
# What the call plays on the app's command, as the caller's waits see it: a speak (or a gather's spoken
# prompt) or a playback (or a gather's prompt file) starting or ending.
CLIP_EVENTS: Final = ("speak_start", "speak_end", "playback_start", "playback_end")
WAIT_EVENTS: Final = (APP_AUDIO_END, APP_AUDIO_START, MARK, *CLIP_EVENTS, APP_DTMF)
ON_TIMEOUT: Final = ("continue", "hangup", "fail")
# The hangup_cause values Telnyx reports (see events.SIP_CAUSES); a scripted caller may end with any of them.
HANGUP_CAUSES: Final = (
    "call_rejected",
    "no_answer",
    "normal_clearing",
    "originator_cancel",
    "timeout",
    "unspecified",
    "user_busy",
)

_NO_AUDIO: Final = np.zeros(0, dtype=np.float32)
_NO_AUDIO.setflags(write=False)


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    at_ms: int
    digit: str
    duration_ms: int


Rendered = tuple[NDArray[np.int16], tuple[DtmfEvent, ...]]  # samples, events relative to the step start


# --- audio steps -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Silence:
    kind: ClassVar[str] = "silence"
    ms: int

    @property
    def duration_ms(self) -> float:
        return float(self.ms)

    def render(self, rate: int) -> Rendered:
        return synth.silence(self.ms, rate), ()


@dataclass(frozen=True, slots=True)
class Tone:
    kind: ClassVar[str] = "tone"
    frequencies: tuple[float, ...]
    ms: int
    level: float = TONE_LEVEL_DBFS

    @property
    def duration_ms(self) -> float:
        return float(self.ms)

    def render(self, rate: int) -> Rendered:
        return synth.tone(self.frequencies, self.ms, self.level, rate), ()


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Digits as tone pairs of ``ms`` each, with ``gap_ms`` of silence between digits (not after the last)."""

    kind: ClassVar[str] = "dtmf"
    digits: str
    ms: int = DTMF_MS
    gap_ms: int = DTMF_GAP_MS
    level: float = DTMF_LEVEL_DBFS

    @property
    def duration_ms(self) -> float:
        return float(len(self.digits) * self.ms + (len(self.digits) - 1) * self.gap_ms)

    def render(self, rate: int) -> Rendered:
        parts: list[NDArray[np.int16]] = []
        for i, digit in enumerate(self.digits):
            if i:
                parts.append(synth.silence(self.gap_ms, rate))
            parts.append(synth.dtmf_digit(digit, self.ms, self.level, rate))
        stride = self.ms + self.gap_ms
        events = tuple(DtmfEvent(i * stride, d, self.ms) for i, d in enumerate(self.digits))
        return np.concatenate(parts), events


@dataclass(frozen=True, slots=True)
class Play:
    """An audio file, decoded at load time to mono float32 at its own rate (read-only); ``level`` is gain in dB."""

    kind: ClassVar[str] = "play"
    file: str  # as written in the scenario, for messages
    path: Path  # resolved absolute path
    samples: NDArray[np.float32] = field(repr=False, compare=False)
    sample_rate: int
    level: float = 0.0
    max_ms: int | None = None  # play only the first max_ms of the file

    @property
    def duration_ms(self) -> float:
        return _clip_ms(len(self.samples) * 1000 / self.sample_rate, self.max_ms)

    def render(self, rate: int) -> Rendered:
        pcm = _cut(synth.resample(self.samples, self.sample_rate, rate), self.max_ms, rate)
        return synth.to_int16(pcm * 10.0 ** (self.level / 20.0)), ()


@dataclass(frozen=True, slots=True)
class Say:
    """Text to speech (espeak-ng, cached: see ``emulator.scenarios.tts``), peak-normalised to ``level`` dBFS."""

    kind: ClassVar[str] = "say"
    text: str
    voice: str = tts.DEFAULT_VOICE
    wpm: int = tts.DEFAULT_WPM
    pitch: int = tts.DEFAULT_PITCH
    level: float = SAY_LEVEL_DBFS
    max_ms: int | None = None  # stop talking after this long: a sentence cut short
    samples: NDArray[np.float32] = field(default_factory=lambda: _NO_AUDIO, repr=False, compare=False)
    sample_rate: int = field(default=tts.STORE_RATE, compare=False)
    origin: str = field(default="", compare=False)  # where the audio came from: bundle, cache or espeak-ng

    @property
    def duration_ms(self) -> float:
        return _clip_ms(len(self.samples) * 1000 / self.sample_rate, self.max_ms)

    def render(self, rate: int) -> Rendered:
        # The gain comes from the stored audio, so the level is the same at every stream rate.
        gain = synth.peak_gain(self.samples, self.level)
        return synth.to_int16(_cut(synth.resample(self.samples, self.sample_rate, rate), self.max_ms, rate) * gain), ()


def _clip_ms(ms: float, max_ms: int | None) -> float:
    return ms if max_ms is None else min(ms, float(max_ms))


def _cut(samples: NDArray[np.float32], max_ms: int | None, rate: int) -> NDArray[np.float32]:
    return samples if max_ms is None else samples[: synth.ms_to_samples(max_ms, rate)]


# --- control steps -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaitFor:
    """The caller waits for the app: see ``emulator.scenarios.cursor`` for exactly when each ``event`` is met."""

    kind: ClassVar[str] = "wait_for"
    event: str = APP_AUDIO_END
    mark: str | None = None  # for event "mark"
    silence_ms: int = 700  # for event "app_audio_end": this much quiet ends the app's turn
    after_ms: int = 0  # resume this long after the condition is met
    timeout_ms: int = 10_000
    on_timeout: str = "continue"
    digits: str | None = None  # for event "dtmf": these keys, in this order (None: any key)
    origin: str = field(default="wait_for", compare=False)  # "file:line: inbound[3].wait_for", for messages

    def __post_init__(self) -> None:
        if self.event not in WAIT_EVENTS:
            raise ValueError(f"event must be one of {', '.join(WAIT_EVENTS)}, got {self.event!r}")
        if (self.event == MARK) != (self.mark is not None):
            raise ValueError("a mark name is needed for event 'mark', and only then")
        if self.digits is not None and self.event != APP_DTMF:
            raise ValueError("digits are only for event 'dtmf'")
        if self.on_timeout not in ON_TIMEOUT:
            raise ValueError(f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, got {self.on_timeout!r}")
        if min(self.silence_ms, self.after_ms) < 0 or self.timeout_ms <= 0:
            raise ValueError("silence_ms and after_ms must be >= 0, timeout_ms > 0")

    @property
    def timeout_ticks(self) -> int:
        """The timeout in whole frames (rounded up): a wait decides once per frame."""
        return -(-self.timeout_ms // FRAME_MS)

    @property
    def duration_ms(self) -> float:
        """How long the wait lasts when the app never answers: its timeout, in whole frames."""
        return float(self.timeout_ticks * FRAME_MS)

    def expecting(self) -> str:
        if self.event == APP_AUDIO_START:
            return "the app to start playing audio"
        if self.event == APP_AUDIO_END:
            return f"the app to play audio and then be quiet for {self.silence_ms} ms"
        if self.event == APP_DTMF:
            return "the app to send DTMF" + (f" {self.digits!r}" if self.digits else "")
        if self.event in CLIP_EVENTS:
            kind, what = self.event.split("_")
            return f"the app's {kind} to {what}"
        return f"the app to echo mark {self.mark!r}"


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hangs up; nothing after it plays."""

    kind: ClassVar[str] = "hangup"
    cause: str = "normal_clearing"

    duration_ms: ClassVar[float] = 0.0


@dataclass(frozen=True, slots=True)
class Repeat:
    """``steps`` played ``times`` times in a row; expanded when the track compiles."""

    kind: ClassVar[str] = "repeat"
    times: int
    steps: tuple[Step, ...]

    @property
    def duration_ms(self) -> float:
        return self.times * sum(step.duration_ms for step in self.steps)

    def count(self) -> int:
        """Leaf steps once expanded (for limits, without expanding)."""
        return self.times * sum(step.count() if isinstance(step, Repeat) else 1 for step in self.steps)


AudioStep = Silence | Tone | Dtmf | Play | Say
Step = AudioStep | WaitFor | Hangup | Repeat


def walk(steps: Iterable[Step]) -> Iterator[Step]:
    """Every step, including those inside ``repeat`` (once each, not expanded)."""
    for step in steps:
        yield step
        if isinstance(step, Repeat):
            yield from walk(step.steps)


def hangup_path(step: Step) -> tuple[str | int, ...] | None:
    """Where ``step`` hangs up every time it plays, as a path into it (``()``: it is a hangup), or None if it can
    end without hanging up.

    Nothing branches, so a ``repeat`` hangs up exactly when one of its steps does, and in its first pass: the path
    is then ``("repeat", "steps", index, ...)``. A ``wait_for`` with ``on_timeout: hangup`` hangs up only if the app
    stays quiet, so it does not count.
    """
    if isinstance(step, Hangup):
        return ()
    if isinstance(step, Repeat):
        for index, inner in enumerate(step.steps):
            found = hangup_path(inner)
            if found is not None:
                return (step.kind, "steps", index, *found)
    return None


def expand(steps: Iterable[Step]) -> Iterator[AudioStep | WaitFor | Hangup]:
    """The steps with every ``repeat`` unrolled, in play order."""
    for step in steps:
        if isinstance(step, Repeat):
            for _ in range(step.times):
                yield from expand(step.steps)
        else:
            yield step


# --- tracks ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Noise:
    """Background noise under a whole track: RMS like a sine at ``level`` dBFS, seeded so it is reproducible."""

    level: float
    color: str = "pink"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Mix:
    """Track-wide options: ``gain`` in dB on every step's audio, then ``noise`` added underneath (also in waits)."""

    gain: float = 0.0
    noise: Noise | None = None


@dataclass(frozen=True, slots=True)
class Track(Sequence[Step]):
    """One track's steps and its mix options. A sequence of its steps, so it can be used wherever steps are."""

    steps: tuple[Step, ...] = ()
    mix: Mix = Mix()

    @overload
    def __getitem__(self, index: int) -> Step: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Step, ...]: ...

    def __getitem__(self, index: int | slice) -> Step | tuple[Step, ...]:
        return self.steps[index]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)
