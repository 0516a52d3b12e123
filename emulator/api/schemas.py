"""SchemaRegistry: the JSON Schemas of request bodies, and their failures as Telnyx problems.

Every ``schemas/<name>.schema.json`` (draft 2020-12) is read and compiled once. ``validate(name, body)``
returns one :class:`Problem` per failing field; the API answers them with HTTP 422 in Telnyx's envelope::

    {"errors": [{"code": "10032", "title": "Invalid enumerated value",
                 "detail": "The value must be one of: both_tracks, inbound_track, outbound_track.",
                 "source": {"pointer": "/stream_track"}}]}

Default codes by keyword: ``required`` 10004, ``enum``/``const`` 10032, ``type`` 10015, lengths, sizes and
ranges 10033, anything else (``pattern``, ``format``, ...) 10015. The keywords ``x-telnyx-code``,
``x-telnyx-title`` and ``x-telnyx-detail`` on the (sub)schema that holds the failing keyword replace those
defaults, except for ``required``, which always reports 10004 at the missing property. A field that fails
several keywords is reported once, for the first failing keyword in the schema's own key order. The table
of codes is in docs/errors.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from emulator.errors import Problem
from emulator.resources import data_dir

SUFFIX = ".schema.json"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_BOUND_WORDS = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "above", "exclusiveMaximum": "below"}
_SIZE_UNITS = {"Length": "characters", "Items": "items", "Properties": "properties"}
_EXTENSIONS = ("x-telnyx-code", "x-telnyx-title", "x-telnyx-detail")


class SchemaError(Exception):
    """A schema file is unreadable or invalid; the message starts with the file's path."""


class SchemaRegistry:
    """The request-body schemas of one directory, each read and checked once, its validators built on first use.

    Each schema has two validators: jsonschema's, whose errors become Problems, and, when jsonschema-rs is
    installed, a compiled one that only says valid or not, about 40 times faster (jsonschema took a quarter
    of the CPU of every request). A body the compiled one accepts is valid; anything else (refused, or a
    value it cannot take) is decided and described by jsonschema. The two must agree on what is valid: the
    schemas avoid regex features whose meaning differs between Python's ``re`` and Rust's, the ``uuid``
    format is jsonschema's own check, and tests/fuzz/test_schema_engines.py compares them.

    Validators are built on first use because most schemas are never used in a given run, and jsonschema-rs
    (about 8 MB of memory) is loaded with the first request that needs it rather than at start-up.
    """

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self._schemas = schemas
        self._validators: dict[str, Any] = {}
        self._fast: dict[str, Any] = {}

    @classmethod
    def load(cls, directory: Path, *, meta_check: bool = True) -> SchemaRegistry:
        """The schemas of ``directory``. ``meta_check=False`` skips checking each schema against the draft
        2020-12 metaschema: jsonschema takes ~0.3 s for ours, most of the emulator's start-up, and the
        bundled schemas are checked by the test suite (tests/unit/test_schemas.py)."""
        paths = sorted(directory.glob(f"*{SUFFIX}"))
        if not paths:
            raise SchemaError(f"{directory}: no *{SUFFIX} files")
        return cls({path.name.removesuffix(SUFFIX): _read(path, meta_check) for path in paths})

    def names(self) -> frozenset[str]:
        return frozenset(self._schemas)

    def validate(self, name: str, body: object) -> list[Problem]:
        """Problems of ``body`` against schema ``name``, sorted by pointer; [] when valid. KeyError if unknown."""
        validator = self.validator(name)
        if not isinstance(body, dict):
            return [Problem("10015", "Invalid request body", "The request body must be a JSON object.", None)]
        if self.fast_accepts(name, body):
            return []
        found: dict[str | None, Problem] = {}
        for error in validator.iter_errors(body):
            for problem in _problems(error):
                found.setdefault(problem.pointer, problem)  # the first failing keyword of a field wins
        return sorted(found.values(), key=lambda problem: problem.pointer or "")

    def validator(self, name: str) -> Any:
        """jsonschema's validator for ``name`` (KeyError if unknown), built once."""
        validator = self._validators.get(name)
        if validator is None:
            validator = self._validators[name] = jsonschema.Draft202012Validator(
                self._schemas[name], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        return validator

    def fast_validator(self, name: str) -> Any | None:
        """jsonschema-rs's validator for ``name``, built once; None without jsonschema-rs."""
        if name not in self._fast:
            self._fast[name] = _compile_fast(self._schemas[name])
        return self._fast[name]

    def fast_accepts(self, name: str, body: object) -> bool:
        """True when the compiled validator exists and accepts ``body``; False sends it to jsonschema."""
        fast = self.fast_validator(name)
        if fast is None:
            return False
        try:
            return bool(fast.is_valid(body))
        except ValueError:  # a value it cannot take: integers past 64 bits, lone surrogates
            return False


def default_schema_dir() -> Path:
    """The bundled ``schemas/`` directory."""
    return data_dir("schemas")


def _is_uuid(value: str) -> bool:
    """jsonschema's ``uuid`` format check, given to jsonschema-rs so both mean the same by it."""
    return bool(jsonschema.Draft202012Validator.FORMAT_CHECKER.conforms(value, "uuid"))


def _compile_fast(schema: dict[str, Any]) -> Any | None:
    try:
        import jsonschema_rs
    except ImportError:  # a platform without its wheels: jsonschema decides alone
        return None
    return jsonschema_rs.Draft202012Validator(
        schema, validate_formats=True, formats={"uuid": _is_uuid}, ignore_unknown_formats=True, offline=True
    )


def _read(path: Path, meta_check: bool) -> dict[str, Any]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError covers bad JSON and bad UTF-8
        raise SchemaError(f"{path}: {exc}") from None
    if not isinstance(schema, dict):
        raise SchemaError(f"{path}: the top level must be a JSON object")
    if schema.get("$schema", DRAFT_2020_12) != DRAFT_2020_12:
        raise SchemaError(f"{path}: $schema must be {DRAFT_2020_12}")
    if meta_check:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise SchemaError(f"{path}: at {_pointer(exc.absolute_path) or '/'}: {exc.message}") from None
    _check_extensions(path, schema, ())
    return schema


def _check_extensions(path: Path, node: object, where: tuple[str | int, ...]) -> None:
    """x-telnyx-* values are strings, codes are digit strings, and a code comes with its title."""
    if isinstance(node, dict):
        for key in _EXTENSIONS:
            if key in node and not isinstance(node[key], str):
                raise SchemaError(f"{path}: at {_pointer((*where, key))}: must be a string")
        code = node.get("x-telnyx-code")
        if code is not None and not (code.isascii() and code.isdigit()):
            raise SchemaError(f"{path}: at {_pointer((*where, 'x-telnyx-code'))}: must be a digit string")
        if code is not None and "x-telnyx-title" not in node:
            raise SchemaError(f"{path}: at {_pointer(where) or '/'}: x-telnyx-code needs an x-telnyx-title")
        for key, value in node.items():
            _check_extensions(path, value, (*where, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_extensions(path, value, (*where, index))


def _problems(error: Any) -> Iterator[Problem]:
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    keyword: str = error.validator or ""  # None for a `false` subschema
    if keyword == "required":
        # One error per missing name, but the error does not say which: report them all, the caller dedups.
        for name in error.validator_value:
            if name not in error.instance:
                label = _label((*path, name))
                detail = f"The '{label}' parameter is required and cannot be blank."
                yield Problem("10004", "Missing required parameter", detail, _pointer((*path, name)))
        return
    schema = error.schema if isinstance(error.schema, dict) else {}
    code, title, detail = _default(keyword, error.validator_value, schema, _label(path))
    yield Problem(
        schema.get("x-telnyx-code", code),
        schema.get("x-telnyx-title", title),
        schema.get("x-telnyx-detail", detail),
        _pointer(path) if path else None,
    )


def _default(keyword: str, value: Any, schema: dict[str, Any], label: str) -> tuple[str, str, str]:
    subject = f"The '{label}' parameter" if label else "The request body"
    if keyword == "type":
        types = [value] if isinstance(value, str) else value
        return "10015", "Invalid value", f"{subject} must be {' or '.join(_TYPE_NAMES.get(t, t) for t in types)}."
    if keyword in ("enum", "const"):
        return "10032", "Invalid enumerated value", f"The value must be one of: {_choices(value, keyword)}."
    if keyword in _BOUND_WORDS:
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return "10033", "Value outside of range", f"The value is outside of allowed range {low} to {high}"
        return "10033", "Value outside of range", f"The value must be {_BOUND_WORDS[keyword]} {value}."
    stem = keyword[3:]
    if keyword[:3] in ("min", "max") and stem in _SIZE_UNITS:
        low, high = schema.get(f"min{stem}"), schema.get(f"max{stem}")
        if low is not None and high is not None:
            bounds = f"between {low} and {high}"
        else:
            bounds = f"at least {value}" if keyword.startswith("min") else f"at most {value}"
        return "10033", "Value outside of range", f"{subject} must have {bounds} {_SIZE_UNITS[stem]}."
    if keyword in ("pattern", "format"):
        return "10015", "Invalid value", f"{subject} has an invalid format."
    return "10015", "Invalid value", f"{subject} is invalid."


def _choices(value: Any, keyword: str) -> str:
    values: Sequence[Any] = value if keyword == "enum" else [value]
    if all(isinstance(v, str) for v in values):
        return ", ".join(sorted(values))  # sorted, as in Telnyx's own 10032 example ("dual, single")
    return ", ".join(v if isinstance(v, str) else json.dumps(v) for v in values)


def _label(path: Sequence[str | int]) -> str:
    """``custom_parameters[0].name`` for the path ("custom_parameters", 0, "name")."""
    label = ""
    for part in path:
        label += f"[{part}]" if isinstance(part, int) else f".{part}" if label else part
    return label


def _pointer(path: Sequence[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
