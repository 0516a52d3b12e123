"""Scripted callers: YAML scenario files, validated against their schema and loaded into steps.

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
such as ``scenarios/ivr.yaml:7: inbound[2].tone.frequency: expected a number, got 'abc'``. This module is the
loader: it reads the file, decodes audio files and finds speech (in its cache, see ``tts``) and builds
the steps (``steps``), so compiling (``segments``) and rendering (``cursor``) are pure.

Adding a step type: a frozen dataclass in ``steps`` (with ``kind``, ``duration_ms`` and ``render``, or a
control step handled by ``segments`` and ``cursor``), a builder here in ``_STEP_TYPES``, and a
branch under ``$defs/step`` (and ``$defs/outbound_step`` if it may play on the outbound track) in the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import soundfile as sf
import yaml

from emulator.resources import data_dir
from emulator.scenarios import tts, yamlcheck
from emulator.scenarios.steps import (
    APP_AUDIO_END,
    APP_DTMF,
    DTMF_GAP_MS,
    DTMF_LEVEL_DBFS,
    DTMF_MS,
    MARK,
    SAY_LEVEL_DBFS,
    TONE_LEVEL_DBFS,
    Dtmf,
    Hangup,
    Mix,
    Noise,
    Play,
    Repeat,
    Say,
    Silence,
    Step,
    Tone,
    Track,
    WaitFor,
    hangup_path,
)
from emulator.scenarios.yamlcheck import FieldPath

# A track, counting each wait_for at its timeout, may last an hour; compiled audio is kept in memory.
MAX_TRACK_MS: Final = 3_600_000
MAX_STEPS: Final = 100_000  # once repeats are expanded
# What makes a file a scenario; a scenario is named by its file's stem, so a name never has one of these.
SCENARIO_SUFFIXES: Final = (".yaml", ".yml")


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
        hangup_at: FieldPath | None = None  # where an earlier step of this list always hangs up
        for i, item in enumerate(items):
            ((kind, body),) = item.items()
            if hangup_at is not None:
                message = f"unreachable: the caller hangs up at {yamlcheck.format_path(hangup_at)}"
                raise ScenarioError(self._problem((*path, i), message))
            step_ctx = replace(self, path=(*path, i, kind))
            try:
                step = _STEP_TYPES[kind](body, step_ctx)
            except _FieldError as e:
                raise ScenarioError(self._problem((*step_ctx.path, *e.path), e.message)) from None
            out.append(step)
            found = hangup_path(step)
            if found is not None:
                hangup_at = (*path, i, *found)
        return tuple(out)

    def _problem(self, path: FieldPath, message: str) -> str:
        return yamlcheck.format_problem(self.source, yamlcheck.line_of(self.root, path), path, message)


def _silence(data: Mapping[str, Any], ctx: StepContext) -> Silence:
    return Silence(ms=int(data["ms"]))


def _tone(data: Mapping[str, Any], ctx: StepContext) -> Tone:
    f = data["frequency"]
    freqs = tuple(float(x) for x in f) if isinstance(f, list) else (float(f),)
    return Tone(frequencies=freqs, ms=int(data["ms"]), level=float(data.get("level", TONE_LEVEL_DBFS)))


def _dtmf(data: Mapping[str, Any], ctx: StepContext) -> Dtmf:
    return Dtmf(
        digits=str(data["digits"]),
        ms=int(data.get("ms", DTMF_MS)),
        gap_ms=int(data.get("gap_ms", DTMF_GAP_MS)),
        level=float(data.get("level", DTMF_LEVEL_DBFS)),
    )


def load_audio(path: Path, level: float = 0.0, file: str | None = None, max_ms: int | None = None) -> Play:
    """A ``play`` step for ``path`` (WAV/FLAC/OGG/MP3/...); raises ``OSError`` or ``soundfile.LibsndfileError``."""
    path = path.resolve()
    with path.open("rb") as fh:  # open here so a missing/unreadable file gets the OS's own reason
        data, rate = sf.read(fh, dtype="float32", always_2d=True)
    if len(data) == 0:
        raise OSError("no audio frames")
    mono = np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))  # mix down: a caller is one channel
    mono.setflags(write=False)
    name = str(path) if file is None else file
    return Play(file=name, path=path, samples=mono, sample_rate=int(rate), level=level, max_ms=max_ms)


def _play(data: Mapping[str, Any], ctx: StepContext) -> Play:
    file, max_ms = str(data["file"]), data.get("max_ms")
    try:
        return load_audio(ctx.base_dir / file, float(data.get("level", 0.0)), file, max_ms)
    except (OSError, RuntimeError) as e:  # soundfile.LibsndfileError is a RuntimeError
        reason = getattr(e, "error_string", None) or getattr(e, "strerror", None) or str(e)
        raise _FieldError(("file",), f"cannot read {file!r}: {str(reason).strip().rstrip('.')}") from None


def speak(text: str, speech: tts.SpeechCache, bundle_dir: Path | None = None, **options: Any) -> Say:
    """A ``say`` step with its audio (from the bundle, the cache or espeak-ng); raises ``tts.SpeechError``."""
    step = Say(text, **options)
    found = speech.get(text, tts.Voice(step.voice, step.wpm, step.pitch), bundle_dir)
    return replace(step, samples=found.samples, sample_rate=found.sample_rate, origin=found.origin)


def _say(data: Mapping[str, Any], ctx: StepContext) -> Say:
    options = {name: data[name] for name in ("voice", "wpm", "pitch", "max_ms") if name in data}
    try:
        return speak(
            str(data["text"]),
            ctx.speech,
            ctx.base_dir / tts.BUNDLE_DIR,
            level=float(data.get("level", SAY_LEVEL_DBFS)),
            **options,
        )
    except tts.SpeechError as e:
        raise _FieldError((e.field,), str(e)) from None


def _wait_for(data: Mapping[str, Any], ctx: StepContext) -> WaitFor:
    mark, digits = data.get("mark"), data.get("digits")
    event = data.get("event", MARK if mark is not None else APP_DTMF if digits is not None else APP_AUDIO_END)
    if mark is not None and event != MARK:
        raise _FieldError(("mark",), f"only used with event: mark (this wait is for {event})")
    if digits is not None and event != APP_DTMF:
        raise _FieldError(("digits",), f"only used with event: dtmf (this wait is for {event})")
    if "silence_ms" in data and event != APP_AUDIO_END:
        raise _FieldError(("silence_ms",), f"only used with event: app_audio_end (this wait is for {event})")
    defaults = WaitFor()
    return WaitFor(
        event=event,
        mark=mark,
        digits=None if digits is None else str(digits).upper(),
        silence_ms=int(data.get("silence_ms", defaults.silence_ms)),
        after_ms=int(data.get("after_ms", defaults.after_ms)),
        timeout_ms=int(data.get("timeout_ms", defaults.timeout_ms)),
        on_timeout=str(data.get("on_timeout", defaults.on_timeout)),
        origin=ctx.where(),
    )


def _hangup(data: Mapping[str, Any], ctx: StepContext) -> Hangup:
    return Hangup(cause=str(data.get("cause", Hangup().cause)))


def _repeat(data: Mapping[str, Any], ctx: StepContext) -> Repeat:
    repeat = Repeat(times=int(data["times"]), steps=ctx.steps(data["steps"], (*ctx.path, "steps")))
    found = hangup_path(repeat)
    if repeat.times > 1 and found is not None:  # the second pass would start after the caller has gone
        where = yamlcheck.format_path((*ctx.path[:-1], *found))  # ctx.path ends with "repeat", and so does found
        message = f"must be 1: the caller hangs up at {where} in the first pass, so the other passes are unreachable"
        raise _FieldError(("times",), message)
    return repeat


_STEP_TYPES: Final[dict[str, Callable[[Mapping[str, Any], StepContext], Step]]] = {
    "dtmf": _dtmf,
    "hangup": _hangup,
    "play": _play,
    "repeat": _repeat,
    "say": _say,
    "silence": _silence,
    "tone": _tone,
    "wait_for": _wait_for,
}


@dataclass(frozen=True, slots=True)
class Callee:
    """The called party of a dialed call: answers after ``ring_ms``, or never, or is busy, or rejects; and who
    answers (a person, a machine with a ``greeting_ms`` greeting, maybe a beep), for answering machine detection."""

    outcome: str = "answer"
    ring_ms: int = 1000
    answered_by: str = "human"
    greeting_ms: int | None = None  # None: 1000 ms for a person, 4000 ms for a machine
    beep: bool = False

    @property
    def greeting(self) -> int:
        if self.greeting_ms is not None:
            return self.greeting_ms
        return 4000 if self.answered_by == "machine" else 1000


@dataclass(frozen=True, slots=True)
class ReferAnswer:
    """How the far end answers the app's ``refer``: follows it (the call then ends) or refuses it."""

    accept: bool = True
    notify: int | None = None  # the NOTIFY's SIP status; None: 200 when accepted, 603 when not
    after_ms: int = 1000

    @property
    def status(self) -> int:
        return self.notify if self.notify is not None else (200 if self.accept else 603)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    description: str
    inbound: Track
    outbound: Track
    callee: Callee = Callee()
    refer: ReferAnswer = ReferAnswer()
    # When the inbound script runs out: "hangup" (the caller hangs up once the call's audio has played) or "stay".
    at_end: str = "hangup"
    base_dir: Path = field(default=Path(), compare=False)  # play files and the speech bundle are relative to it
    # Fault rules for the calls that play it (docs/faults.md), as POST /_emulator/faults takes them.
    faults: tuple[dict[str, Any], ...] = ()


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
        refer=ReferAnswer(**data.get("refer", {})),
        at_end=data.get("at_end", "hangup"),
        base_dir=base_dir,
        faults=_faults(root, data, source),
    )


def _faults(root: Any, data: dict[str, Any], source: str) -> tuple[dict[str, Any], ...]:
    """The scenario's fault rules, each valid as a rule of /_emulator/faults (its scenario is this one)."""
    rules = data.get("faults", [])
    check = yamlcheck.validator(data_dir("schemas") / "fault_rule.schema.json")
    for index, rule in enumerate(rules):
        try:
            yamlcheck.check_part(root, ("faults", index), rule, source, check)
        except yamlcheck.YamlProblem as e:
            raise ScenarioError(str(e)) from None
        if "scenario" in rule:
            path = ("faults", index, "scenario")
            why = "a scenario's faults apply to its own calls: remove scenario"
            raise ScenarioError(yamlcheck.format_problem(source, yamlcheck.line_of(root, path), path, why))
    return tuple(rules)


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
    for path in sorted(p for p in directory.iterdir() if p.suffix in SCENARIO_SUFFIXES and p.is_file()):
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
