"""Scripted caller audio: YAML scenarios, validated and rendered to PCM.

A scenario says what the caller sends (``inbound``) and, optionally, what the call plays back
(``outbound``). Each step is a mapping with exactly one key, the step type::

    description: A caller says hello, presses 1 2 3, then a beep.
    inbound:
      - play: {file: audio/hello.wav}          # relative to this file; any rate, mixed to mono
      - silence: {ms: 500}
      - dtmf: {digits: "123", ms: 100, gap_ms: 100, level: -10}
      - tone: {frequency: 440, ms: 1000, level: -12}
    outbound:
      - silence: {ms: 1000}

Files are checked against ``schemas/scenario.schema.json``; every problem becomes one
``ScenarioError`` line such as ``scenarios/ivr.yaml:7: inbound[2].tone.frequency: expected a number, got 'abc'``.
Audio files are decoded at load time, so ``render_track`` is pure and does no I/O.

Adding a step type: a frozen dataclass with ``kind``, ``from_yaml`` and ``render``, an entry in
``_STEP_TYPES`` and in the ``Step`` union, and a branch under ``$defs/step`` in the schema.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Final

import jsonschema  # type: ignore[import-untyped]
import numpy as np
import soundfile as sf
import yaml
from numpy.typing import NDArray

from emulator import synth

TONE_LEVEL_DBFS: Final = -12.0
DTMF_LEVEL_DBFS: Final = -10.0
DTMF_MS: Final = 100
DTMF_GAP_MS: Final = 100

_Path = tuple[str | int, ...]


class ScenarioError(Exception):
    """A scenario that cannot be used; ``str(e)`` is one line: ``file:line: field.path: problem``."""


class _FieldError(Exception):
    """Raised by step builders; the parser prefixes the step's path and finds the YAML line."""

    def __init__(self, path: _Path, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    at_ms: int
    digit: str
    duration_ms: int


_Rendered = tuple[NDArray[np.int16], tuple[DtmfEvent, ...]]  # samples, events relative to the step start


@dataclass(frozen=True, slots=True)
class Silence:
    kind: ClassVar[str] = "silence"
    ms: int

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], base_dir: Path) -> Silence:
        return cls(ms=int(data["ms"]))

    def render(self, rate: int) -> _Rendered:
        return synth.silence(self.ms, rate), ()


@dataclass(frozen=True, slots=True)
class Tone:
    kind: ClassVar[str] = "tone"
    frequencies: tuple[float, ...]
    ms: int
    level: float = TONE_LEVEL_DBFS

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], base_dir: Path) -> Tone:
        f = data["frequency"]
        freqs = tuple(float(x) for x in f) if isinstance(f, list) else (float(f),)
        return cls(frequencies=freqs, ms=int(data["ms"]), level=float(data.get("level", TONE_LEVEL_DBFS)))

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
    def from_yaml(cls, data: Mapping[str, Any], base_dir: Path) -> Dtmf:
        return cls(
            digits=str(data["digits"]),
            ms=int(data.get("ms", DTMF_MS)),
            gap_ms=int(data.get("gap_ms", DTMF_GAP_MS)),
            level=float(data.get("level", DTMF_LEVEL_DBFS)),
        )

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

    @classmethod
    def load(cls, path: Path, level: float = 0.0, file: str | None = None) -> Play:
        """Decode ``path`` (WAV/FLAC/OGG/...); raises ``OSError`` or ``soundfile.LibsndfileError``."""
        path = path.resolve()
        with path.open("rb") as fh:  # open here so a missing/unreadable file gets the OS's own reason
            data, rate = sf.read(fh, dtype="float32", always_2d=True)
        if len(data) == 0:
            raise OSError("no audio frames")
        mono = np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))  # mix down: a caller is one channel
        mono.setflags(write=False)
        return cls(
            file=str(path) if file is None else file, path=path, samples=mono, sample_rate=int(rate), level=level
        )

    @classmethod
    def from_yaml(cls, data: Mapping[str, Any], base_dir: Path) -> Play:
        file = str(data["file"])
        try:
            return cls.load(base_dir / file, float(data.get("level", 0.0)), file)
        except (OSError, RuntimeError) as e:  # soundfile.LibsndfileError is a RuntimeError
            reason = getattr(e, "error_string", None) or getattr(e, "strerror", None) or str(e)
            raise _FieldError(("file",), f"cannot read {file!r}: {str(reason).strip().rstrip('.')}") from None

    def render(self, rate: int) -> _Rendered:
        pcm = synth.resample(self.samples, self.sample_rate, rate)
        return synth.to_int16(pcm * 10.0 ** (self.level / 20.0)), ()


Step = Silence | Tone | Dtmf | Play

_STEP_TYPES: Final[dict[str, Callable[[Mapping[str, Any], Path], Step]]] = {
    "dtmf": Dtmf.from_yaml,
    "play": Play.from_yaml,
    "silence": Silence.from_yaml,
    "tone": Tone.from_yaml,
}


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
    inbound: tuple[Step, ...]
    outbound: tuple[Step, ...]
    callee: Callee = Callee()


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: comparing numpy arrays has no single truth value
class RenderedTrack:
    pcm: NDArray[np.int16]
    sample_rate: int
    dtmf: tuple[DtmfEvent, ...]

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) * 1000 / self.sample_rate


def render_track(steps: Sequence[Step], sample_rate: int) -> RenderedTrack:
    """Concatenate the steps' audio at ``sample_rate``; DTMF events are offset to where their step starts."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    parts: list[NDArray[np.int16]] = []
    events: list[DtmfEvent] = []
    pos = 0
    for step in steps:
        pcm, step_events = step.render(sample_rate)
        offset_ms = (pos * 1000 + sample_rate // 2) // sample_rate
        events.extend(DtmfEvent(e.at_ms + offset_ms, e.digit, e.duration_ms) for e in step_events)
        parts.append(pcm)
        pos += len(pcm)
    pcm_all = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return RenderedTrack(pcm=pcm_all, sample_rate=sample_rate, dtmf=tuple(events))


def default_scenario_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "scenarios"


def schema_path() -> Path:
    return default_scenario_dir().parent / "schemas" / "scenario.schema.json"


def parse_scenario(text: str, source: str, base_dir: Path) -> Scenario:
    """Validate YAML ``text`` (``source`` names it in errors) and decode its audio files relative to ``base_dir``."""
    root, data = _compose(text, source)
    errors = list(_validator().iter_errors(data))
    if errors:
        described = [_describe(e, root) for e in errors]
        # Report the problem nearest the top of the file; ties go to the most fundamental kind of error.
        line, _, field_path, message = min(described, key=lambda d: (d[0], d[1]))
        raise ScenarioError(_format(source, line, field_path, message))

    def steps(track: str) -> tuple[Step, ...]:
        out: list[Step] = []
        for i, item in enumerate(data.get(track, [])):
            ((kind, body),) = item.items()
            try:
                out.append(_STEP_TYPES[kind](body, base_dir))
            except _FieldError as e:
                path = (track, i, kind, *e.path)
                raise ScenarioError(_format(source, _line_of(root, path), path, e.message)) from None
        return tuple(out)

    return Scenario(
        name=Path(source).stem,
        source=source,
        description=data.get("description", ""),
        inbound=steps("inbound"),
        outbound=steps("outbound"),
        callee=Callee(**data.get("callee", {})),
    )


def load_scenario(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read scenario: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ScenarioError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_scenario(text, str(path), path.parent)


def load_scenarios(directory: Path) -> dict[str, Scenario]:
    """Every ``*.yaml``/``*.yml`` directly in ``directory``, by name; the first bad file raises."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: not a directory")
    found: dict[str, Scenario] = {}
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        if path.stem in found:
            raise ScenarioError(f"{path}: duplicate scenario name {path.stem!r} (also {found[path.stem].source})")
        found[path.stem] = load_scenario(path)
    return found


# --- YAML and schema plumbing -------------------------------------------------------------------------------------


def _compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """Parse once, keeping the node tree for line numbers alongside the plain data."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            _reject_duplicate_keys(root, (), source, set())  # before construction, which would silently keep the last
        return root, (loader.construct_document(root) if root is not None else None)
    except yaml.MarkedYAMLError as e:
        mark, problem = e.problem_mark or e.context_mark, e.problem or e.context or "syntax error"
        if e.context and problem.startswith("but "):  # e.g. "expected a single document..., but found another"
            problem = f"{e.context}, {problem}"
        raise ScenarioError(f"{source}:{mark.line + 1 if mark else 1}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{source}:1: invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _reject_duplicate_keys(node: yaml.Node, path: _Path, source: str, seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # aliases may make the graph cyclic
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.id}>"
            if name in keys and name != "<<":
                raise ScenarioError(_format(source, key.start_mark.line + 1, (*path, name), "duplicate key"))
            keys.add(name)
            _reject_duplicate_keys(value, (*path, name), source, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*path, i), source, seen_nodes)


@cache
def _validator() -> Any:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    base.check_schema(schema)
    # YAML has .nan and .inf, which pass minimum/maximum checks; they are not usable numbers here.
    checker = base.TYPE_CHECKER.redefine(
        "number", lambda _, x: isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def _node_at(root: yaml.Node | None, path: _Path) -> tuple[yaml.Node | None, yaml.Node | None]:
    """The YAML node at ``path`` (or the deepest one reached) and, for mapping values, its key node."""
    node, key_node = root, None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            # Last match wins, as in construction (merge keys put inherited entries first).
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not match:
                break
            key_node, node = match[-1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            key_node, node = None, node.value[part]
        else:
            break
    return node, key_node


def _line_of(root: yaml.Node | None, path: _Path, *, key: bool = False) -> int:
    node, key_node = _node_at(root, path)
    mark_node = key_node if key and key_node is not None else node
    return mark_node.start_mark.line + 1 if mark_node is not None else 1


def _describe(err: Any, root: yaml.Node | None) -> tuple[int, int, _Path, str]:
    """A jsonschema error as (line, rank, field path, message); rank orders errors found on the same line."""
    path: _Path = tuple(err.absolute_path)
    v, inst, schema, key_line, rank = err.validator, err.instance, err.schema, False, 3
    steps = ", ".join(sorted(_STEP_TYPES))
    if "propertyNames" in err.absolute_schema_path:
        rank, msg = 0, f"unknown step {inst!r} (expected one of: {steps})"
    elif v == "type":
        where = "" if path else " at the top level"
        rank, msg = 1, f"expected {_type_names(err.validator_value)}{where}, got {_show(inst)}"
    elif v in ("minProperties", "maxProperties"):  # only steps use these: a step is a mapping with one key
        rank, msg = 1, f"expected exactly one step key (one of: {steps}), got {', '.join(map(str, inst)) or 'none'}"
    elif v == "required":
        path, msg = (*path, next(k for k in err.validator_value if k not in inst)), "missing required field"
    elif v == "additionalProperties":
        known = schema.get("properties", {})
        path, key_line = (*path, next(str(k) for k in inst if k not in known)), True
        msg = f"unknown field (expected one of: {', '.join(sorted(known))})"
    elif v in ("minimum", "maximum"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        bounds = (
            f"between {lo} and {hi}"
            if lo is not None and hi is not None
            else f"{'>=' if v == 'minimum' else '<='} {err.validator_value}"
        )
        msg = f"must be {bounds}, got {_show(inst)}"
    elif v == "pattern":
        msg = f"expected {schema.get('x-expected', 'a match for ' + err.validator_value)}, got {_show(inst)}"
    elif v in ("minItems", "maxItems"):
        n = err.validator_value
        msg = f"expected {'at least' if v == 'minItems' else 'at most'} {n} item{'s' * (n != 1)}, got {len(inst)}"
    elif v == "minLength":
        msg = "must not be empty"
    else:
        rank, msg = 4, str(err.message)
    return _line_of(root, path, key=key_line), rank, path, msg


def _type_names(types: str | list[str]) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer"}
    names |= {"number": "a number", "boolean": "true or false", "null": "null"}
    return " or ".join(names.get(t, t) for t in ([types] if isinstance(types, str) else types))


def _show(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _format(source: str, line: int, path: _Path, message: str) -> str:
    field_path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return f"{source}:{line}: {field_path}: {message}" if field_path else f"{source}:{line}: {message}"
