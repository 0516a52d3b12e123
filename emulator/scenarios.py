"""Scripted callers: YAML scenarios, validated, loaded into steps, and compiled or rendered to PCM.

A scenario says what the caller sends (``inbound``) and, optionally, what the call plays back (``outbound``).
Each step is a mapping with exactly one key, the step type::

    description: A caller waits for the bot's greeting, asks a question, listens, hangs up.
    noise: {level: -50}                        # optional: background noise under the caller's audio
    inbound:
      - wait_for: {event: app_audio_end, timeout_ms: 8000}
      - say: {text: "What are your opening hours?"}
      - play: {file: audio/hello.wav}          # relative to this file; any rate, mixed to mono
      - dtmf: {digits: "123"}
      - repeat: {times: 2, steps: [{tone: {frequency: 440, ms: 200}}, {silence: {ms: 200}}]}
      - hangup: {}
    outbound:
      - silence: {ms: 1000}

Files are checked against ``schemas/scenario.schema.json``; every problem becomes one ``ScenarioError`` line
such as ``scenarios/ivr.yaml:7: inbound[2].tone.frequency: expected a number, got 'abc'``. Audio files are
decoded and speech is synthesized (or found in its cache, see ``emulator.tts``) at load time, so compiling and
rendering are pure. ``compile_track`` gives the segments the stream engine walks (``emulator.script``);
``render_track`` gives what an app that never answers would hear.

Adding a step type: a frozen dataclass with ``kind``, ``duration_ms`` and ``render`` (or a control step handled
by ``emulator.script``), a builder in ``_STEP_TYPES`` and the ``Step`` union, and a branch under ``$defs/step``
(and ``$defs/outbound_step`` if it may play on the outbound track) in the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Final, overload

import numpy as np
import soundfile as sf
import yaml
from numpy.typing import NDArray

from emulator import script, synth, tts, yamlcheck
from emulator.resources import data_dir
from emulator.script import (
    CompiledTrack,
    DtmfEvent as DtmfEvent,  # re-exported: steps and tracks speak of it
    Hangup,
    Mix,
    Noise,
    RenderedTrack as RenderedTrack,
    Repeat,
    WaitFor,
)
from emulator.yamlcheck import FieldPath

TONE_LEVEL_DBFS: Final = -12.0
DTMF_LEVEL_DBFS: Final = -10.0
DTMF_MS: Final = 100
DTMF_GAP_MS: Final = 100
SAY_LEVEL_DBFS: Final = -3.0
# A track, counting each wait_for at its timeout, may last an hour; compiled audio is kept in memory.
MAX_TRACK_MS: Final = 3_600_000
MAX_STEPS: Final = 100_000  # once repeats are expanded

_Rendered = tuple[NDArray[np.int16], tuple[DtmfEvent, ...]]  # samples, events relative to the step start
_NO_AUDIO: Final = np.zeros(0, dtype=np.float32)
_NO_AUDIO.setflags(write=False)


class ScenarioError(Exception):
    """A scenario that cannot be used; ``str(e)`` is one line: ``file:line: field.path: problem``."""


class _FieldError(Exception):
    """Raised by step builders; the parser prefixes the step's path and finds the YAML line."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step builder may use: the scenario's folder, its place in the file, and where speech comes from."""

    base_dir: Path
    source: str
    root: yaml.Node | None = field(repr=False)
    speech: tts.SpeechCache
    path: FieldPath = ()  # of the step body being built, e.g. ("inbound", 3, "wait_for")

    def where(self, *sub: str | int) -> str:
        """``file:line: field.path`` of this step (or of a field in it), for messages at play time."""
        path = (*self.path, *sub)
        return f"{self.source}:{yamlcheck.line_of(self.root, path)}: {yamlcheck.format_path(path)}"

    def steps(self, items: Sequence[Mapping[str, Any]], path: FieldPath) -> tuple[Step, ...]:
        out: list[Step] = []
        for i, item in enumerate(items):
            ((kind, body),) = item.items()
            if out and isinstance(out[-1], Hangup):
                message = f"unreachable: the caller hangs up at {yamlcheck.format_path((*path, i - 1))}"
                raise ScenarioError(self._problem((*path, i), message))
            step_ctx = replace(self, path=(*path, i, kind))
            try:
                out.append(_STEP_TYPES[kind](body, step_ctx))
            except _FieldError as e:
                raise ScenarioError(self._problem((*step_ctx.path, *e.path), e.message)) from None
        return tuple(out)

    def _problem(self, path: FieldPath, message: str) -> str:
        return yamlcheck.format_problem(self.source, yamlcheck.line_of(self.root, path), path, message)


@dataclass(frozen=True, slots=True)
class Silence:
    kind: ClassVar[str] = "silence"
    ms: int

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], ctx: StepContext) -> Silence:
        return cls(ms=int(data["ms"]))

    @property
    def duration_ms(self) -> float:
        return float(self.ms)

    def render(self, rate: int) -> _Rendered:
        return synth.silence(self.ms, rate), ()


@dataclass(frozen=True, slots=True)
class Tone:
    kind: ClassVar[str] = "tone"
    frequencies: tuple[float, ...]
    ms: int
    level: float = TONE_LEVEL_DBFS

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], ctx: StepContext) -> Tone:
        f = data["frequency"]
        freqs = tuple(float(x) for x in f) if isinstance(f, list) else (float(f),)
        return cls(frequencies=freqs, ms=int(data["ms"]), level=float(data.get("level", TONE_LEVEL_DBFS)))

    @property
    def duration_ms(self) -> float:
        return float(self.ms)

    def render(self, rate: int) -> _Rendered:
        return synth.tone(self.frequencies, self.ms, self.level, rate), ()


@dataclass(frozen=True, slots=True)
class Dtmf:
    """Digits as tone pairs of ``ms`` each, with ``gap_ms`` of silence between digits (not after the last)."""

    kind: ClassVar[str] = "dtmf"
    digits: str
    ms: int = DTMF_MS
    gap_ms: int = DTMF_GAP_MS
    level: float = DTMF_LEVEL_DBFS

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], ctx: StepContext) -> Dtmf:
        return cls(
            digits=str(data["digits"]),
            ms=int(data.get("ms", DTMF_MS)),
            gap_ms=int(data.get("gap_ms", DTMF_GAP_MS)),
            level=float(data.get("level", DTMF_LEVEL_DBFS)),
        )

    @property
    def duration_ms(self) -> float:
        return float(len(self.digits) * self.ms + (len(self.digits) - 1) * self.gap_ms)

    def render(self, rate: int) -> _Rendered:
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

    @classmethod
    def load(cls, path: Path, level: float = 0.0, file: str | None = None, max_ms: int | None = None) -> Play:
        """Decode ``path`` (WAV/FLAC/OGG/MP3/...); raises ``OSError`` or ``soundfile.LibsndfileError``."""
        path = path.resolve()
        with path.open("rb") as fh:  # open here so a missing/unreadable file gets the OS's own reason
            data, rate = sf.read(fh, dtype="float32", always_2d=True)
        if len(data) == 0:
            raise OSError("no audio frames")
        mono = np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))  # mix down: a caller is one channel
        mono.setflags(write=False)
        name = str(path) if file is None else file
        return cls(file=name, path=path, samples=mono, sample_rate=int(rate), level=level, max_ms=max_ms)

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], ctx: StepContext) -> Play:
        file, max_ms = str(data["file"]), data.get("max_ms")
        try:
            return cls.load(ctx.base_dir / file, float(data.get("level", 0.0)), file, max_ms)
        except (OSError, RuntimeError) as e:  # soundfile.LibsndfileError is a RuntimeError
            reason = getattr(e, "error_string", None) or getattr(e, "strerror", None) or str(e)
            raise _FieldError(("file",), f"cannot read {file!r}: {str(reason).strip().rstrip('.')}") from None

    @property
    def duration_ms(self) -> float:
        return _clip_ms(len(self.samples) * 1000 / self.sample_rate, self.max_ms)

    def render(self, rate: int) -> _Rendered:
        pcm = _cut(synth.resample(self.samples, self.sample_rate, rate), self.max_ms, rate)
        return synth.to_int16(pcm * 10.0 ** (self.level / 20.0)), ()


@dataclass(frozen=True, slots=True)
class Say:
    """Text to speech (espeak-ng, cached: see ``emulator.tts``), peak-normalised to ``level`` dBFS."""

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

    @classmethod
    def speak(cls, text: str, speech: tts.SpeechCache, bundle_dir: Path | None = None, **options: Any) -> Say:
        """A ``say`` step with its audio; raises ``tts.SpeechError``."""
        step = cls(text, **options)
        found = speech.get(text, tts.Voice(step.voice, step.wpm, step.pitch), bundle_dir)
        return replace(step, samples=found.samples, sample_rate=found.sample_rate, origin=found.origin)

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], ctx: StepContext) -> Say:
        options = {name: data[name] for name in ("voice", "wpm", "pitch", "max_ms") if name in data}
        try:
            return cls.speak(
                str(data["text"]),
                ctx.speech,
                ctx.base_dir / tts.BUNDLE_DIR,
                level=float(data.get("level", SAY_LEVEL_DBFS)),
                **options,
            )
        except tts.SpeechError as e:
            raise _FieldError((e.field,), str(e)) from None

    @property
    def duration_ms(self) -> float:
        return _clip_ms(len(self.samples) * 1000 / self.sample_rate, self.max_ms)

    def render(self, rate: int) -> _Rendered:
        # The gain comes from the stored audio, so the level is the same at every stream rate.
        gain = synth.peak_gain(self.samples, self.level)
        return synth.to_int16(_cut(synth.resample(self.samples, self.sample_rate, rate), self.max_ms, rate) * gain), ()


def _clip_ms(ms: float, max_ms: int | None) -> float:
    return ms if max_ms is None else min(ms, float(max_ms))


def _cut(samples: NDArray[np.float32], max_ms: int | None, rate: int) -> NDArray[np.float32]:
    return samples if max_ms is None else samples[: synth.ms_to_samples(max_ms, rate)]


def _wait_for(data: Mapping[str, Any], ctx: StepContext) -> WaitFor:
    mark = data.get("mark")
    event = data.get("event", script.MARK if mark is not None else script.APP_AUDIO_END)
    if mark is not None and event != script.MARK:
        raise _FieldError(("mark",), f"only used with event: mark (this wait is for {event})")
    if "silence_ms" in data and event != script.APP_AUDIO_END:
        raise _FieldError(("silence_ms",), f"only used with event: app_audio_end (this wait is for {event})")
    defaults = WaitFor()
    return WaitFor(
        event=event,
        mark=mark,
        silence_ms=int(data.get("silence_ms", defaults.silence_ms)),
        after_ms=int(data.get("after_ms", defaults.after_ms)),
        timeout_ms=int(data.get("timeout_ms", defaults.timeout_ms)),
        on_timeout=str(data.get("on_timeout", defaults.on_timeout)),
        origin=ctx.where(),
    )


def _hangup(data: Mapping[str, Any], ctx: StepContext) -> Hangup:
    return Hangup(cause=str(data.get("cause", Hangup().cause)))


def _repeat(data: Mapping[str, Any], ctx: StepContext) -> Repeat:
    return Repeat(times=int(data["times"]), steps=ctx.steps(data["steps"], (*ctx.path, "steps")))


Step = Silence | Tone | Dtmf | Play | Say | WaitFor | Hangup | Repeat

_STEP_TYPES: Final[dict[str, Callable[[Mapping[str, Any], StepContext], Step]]] = {
    "dtmf": Dtmf.from_yaml,
    "hangup": _hangup,
    "play": Play.from_yaml,
    "repeat": _repeat,
    "say": Say.from_yaml,
    "silence": Silence.from_yaml,
    "tone": Tone.from_yaml,
    "wait_for": _wait_for,
}


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


@dataclass(frozen=True, slots=True)
class Callee:
    """The called party of a dialed call: answers after ``ring_ms``, or never, or is busy, or rejects."""

    outcome: str = "answer"
    ring_ms: int = 1000


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    description: str
    inbound: Track
    outbound: Track
    callee: Callee = Callee()
    base_dir: Path = field(default=Path(), compare=False)  # play files and the speech bundle are relative to it


def compile_track(steps: Sequence[Step], sample_rate: int, mix: Mix | None = None) -> CompiledTrack:
    """The segments the stream engine walks (see ``emulator.script``); a ``Track`` brings its own mix."""
    if mix is None and isinstance(steps, Track):
        mix = steps.mix
    return script.compile_track(steps, sample_rate, mix)


def render_track(steps: Sequence[Step], sample_rate: int, mix: Mix | None = None) -> RenderedTrack:
    """The track as an app that never answers hears it: each ``wait_for`` lasts its timeout, ``hangup`` ends it.

    Plain audio steps render back to back, exactly; DTMF events are offset to where their step starts.
    """
    return script.render(compile_track(steps, sample_rate, mix))


def walk(steps: Iterable[Step]) -> Iterator[Step]:
    """Every step, including those inside ``repeat`` (once each, not expanded)."""
    for step in steps:
        yield step
        if isinstance(step, Repeat):
            yield from walk(step.steps)  # type: ignore[arg-type]  # a Repeat built here holds Steps


def default_scenario_dir() -> Path:
    return data_dir("scenarios")


def schema_path() -> Path:
    return data_dir("schemas") / "scenario.schema.json"


def parse_scenario(text: str, source: str, base_dir: Path, *, speech: tts.SpeechCache | None = None) -> Scenario:
    """Validate YAML ``text`` (``source`` names it in errors); decode audio and find speech relative to ``base_dir``."""
    try:
        root, data = yamlcheck.load(text, source, yamlcheck.validator(schema_path()), _describe)
    except yamlcheck.YamlProblem as e:
        raise ScenarioError(str(e)) from None
    ctx = StepContext(base_dir, source, root, speech or tts.SpeechCache.from_env())
    noise = data.get("noise")
    mix = Mix(
        gain=float(data.get("gain", 0.0)),
        noise=Noise(float(noise["level"]), **{k: noise[k] for k in ("color", "seed") if k in noise})
        if noise is not None
        else None,
    )
    tracks = {}
    for name in ("inbound", "outbound"):
        tracks[name] = Track(ctx.steps(data.get(name, []), (name,)), mix if name == "inbound" else Mix())
        _check_limits(tracks[name], name, ctx)
    return Scenario(
        name=Path(source).stem,
        source=source,
        description=data.get("description", ""),
        inbound=tracks["inbound"],
        outbound=tracks["outbound"],
        callee=Callee(**data.get("callee", {})),
        base_dir=base_dir,
    )


def load_scenario(path: Path, *, speech: tts.SpeechCache | None = None) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read scenario: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_scenario(text, str(path), path.parent, speech=speech)


def load_scenarios(directory: Path, *, speech: tts.SpeechCache | None = None) -> dict[str, Scenario]:
    """Every ``*.yaml``/``*.yml`` directly in ``directory``, by name; the first bad file raises."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: not a directory")
    speech = speech or tts.SpeechCache.from_env()  # one cache for all: texts shared between scenarios load once
    found: dict[str, Scenario] = {}
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        if path.stem in found:
            raise ScenarioError(f"{path}: duplicate scenario name {path.stem!r} (also {found[path.stem].source})")
        found[path.stem] = load_scenario(path, speech=speech)
    return found


def _check_limits(track: Track, name: str, ctx: StepContext) -> None:
    count = sum(step.count() if isinstance(step, Repeat) else 1 for step in track)
    line = yamlcheck.line_of(ctx.root, (name,), key=True)
    if count > MAX_STEPS:
        message = f"{count} steps once repeats are expanded; the limit is {MAX_STEPS}"
        raise ScenarioError(yamlcheck.format_problem(ctx.source, line, (name,), message))
    ms = sum(step.duration_ms for step in track)
    if ms > MAX_TRACK_MS:
        limit = MAX_TRACK_MS // 1000
        message = f"lasts {ms / 1000:.0f} s, counting each wait_for at its timeout; the limit is {limit} s"
        raise ScenarioError(yamlcheck.format_problem(ctx.source, line, (name,), message))


def _describe(err: Any) -> tuple[int, FieldPath, str, bool] | None:
    """Step errors in the words of steps; everything else is worded by yamlcheck."""
    path: FieldPath = tuple(err.absolute_path)
    if "propertyNames" in err.absolute_schema_path:
        allowed, name = ", ".join(err.validator_value), err.instance
        if name in _STEP_TYPES:  # a real step where it cannot be: wait_for or hangup on the outbound track
            return 0, path, f"step {name!r} is only allowed in inbound (expected one of: {allowed})", False
        return 0, path, f"unknown step {name!r} (expected one of: {allowed})", False
    if err.validator in ("minProperties", "maxProperties"):  # only steps use these: a step is a mapping with one key
        allowed, got = ", ".join(err.schema["propertyNames"]["enum"]), ", ".join(map(str, err.instance)) or "none"
        return 1, path, f"expected exactly one step key (one of: {allowed}), got {got}", False
    return None
