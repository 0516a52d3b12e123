"""YAML files checked against a JSON Schema, with every problem as one line: ``file:line: field.path: message``.

Shared by scenario files and the scenario map. The YAML is parsed once, keeping the node tree for line numbers
next to the plain data; duplicate keys are rejected (plain YAML would silently keep the last one) and
``.nan``/``.inf`` are not numbers. When a file has several problems, the one nearest its top is reported.
Callers catch ``YamlProblem`` and re-raise it as their own error type.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

FieldPath = tuple[str | int, ...]
# A caller's wording for a schema error it knows better: (rank, path, message, point at the key's line), or None.
Describe = Callable[[Any], tuple[int, FieldPath, str, bool] | None]


class YamlProblem(Exception):
    """One problem, already formatted as one line."""


def load(text: str, source: str, validator: Any, describe: Describe | None = None) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data of ``text``, valid against ``validator``; else ``YamlProblem``."""
    root, data = compose(text, source)
    check(root, data, source, validator, describe)
    return root, data


def check(root: yaml.Node | None, data: Any, source: str, validator: Any, describe: Describe | None = None) -> None:
    """Raise ``YamlProblem`` for the first (topmost) way ``data`` fails ``validator``."""
    errors = list(validator.iter_errors(data))
    if errors:
        described = [_describe(e, root, describe) for e in errors]
        # The problem nearest the top of the file; ties go to the most fundamental kind of error.
        line, _, field_path, message = min(described, key=lambda d: (d[0], d[1]))
        raise YamlProblem(format_problem(source, line, field_path, message))


def check_part(root: yaml.Node | None, prefix: FieldPath, data: Any, source: str, validator: Any) -> None:
    """``check`` for one part of the document (the value at ``prefix``) against a schema of its own: the line
    and field path of a problem are the whole file's. A subschema's ``x-telnyx-detail`` words its problem."""
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    described = []
    for err in errors:
        _, rank, path, message = _describe(err, None, None)
        if err.validator not in ("required", "type") and isinstance(err.schema, dict):
            message = err.schema.get("x-telnyx-detail", message)
        full = (*prefix, *path)
        described.append((line_of(root, full), rank, full, message))
    line, _, field_path, message = min(described, key=lambda d: (d[0], d[1]))
    raise YamlProblem(format_problem(source, line, field_path, message))


# libyaml parses about five times faster than PyYAML's own parser, which took most of the start-up's scenario
# loading. Its error messages differ in wording, so a file it refuses is parsed again by the pure-Python
# loader, whose messages (and marks) are the ones users see. libyaml also accepts a little more: tabs
# around values and a byte-order mark inside the text, which PyYAML refuses or keeps as content; such
# files go to the pure-Python loader, so whether they load does not depend on PyYAML's build. (Further
# differences need YAML no scenario uses: an empty ``!`` tag, a ``?`` inside a flow sequence.)
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def compose(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    if _FAST_LOADER is not None and "\t" not in text and "\ufeff" not in text[1:]:
        try:
            return _parse(_FAST_LOADER(text), source)
        except yaml.YAMLError:
            pass  # reported below, in the pure-Python loader's words
    try:
        return _parse(yaml.SafeLoader(text), source)
    except yaml.MarkedYAMLError as e:
        mark, problem = e.problem_mark or e.context_mark, e.problem or e.context or "syntax error"
        if e.context and problem.startswith("but "):  # e.g. "expected a single document..., but found another"
            problem = f"{e.context}, {problem}"
        raise YamlProblem(f"{source}:{mark.line + 1 if mark else 1}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise YamlProblem(f"{source}:1: invalid YAML: {e}") from None


def _parse(loader: yaml.SafeLoader, source: str) -> tuple[yaml.Node | None, Any]:
    try:
        root = loader.get_single_node()
        if root is not None:
            _reject_duplicate_keys(root, (), source, set())  # before construction, which would silently keep the last
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


@cache
def validator(schema_file: Path) -> Any:
    """A draft 2020-12 validator for ``schema_file`` in which only finite numbers are numbers.

    The schema itself is not checked against the metaschema here (slow, and done for every bundled
    schema by tests/unit/test_schemas.py)."""
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    # YAML has .nan and .inf, which pass minimum/maximum checks; they are not usable numbers here.
    checker = base.TYPE_CHECKER.redefine(
        "number", lambda _, x: isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(schema)


def line_of(root: yaml.Node | None, path: FieldPath, *, key: bool = False) -> int:
    """The 1-based line of the node at ``path`` (or of its key), or of the deepest node that exists."""
    node, key_node = _node_at(root, path)
    mark_node = key_node if key and key_node is not None else node
    return mark_node.start_mark.line + 1 if mark_node is not None else 1


def format_problem(source: str, line: int, path: FieldPath, message: str) -> str:
    return f"{source}:{line}: {format_path(path)}: {message}" if path else f"{source}:{line}: {message}"


def format_path(path: FieldPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def show(value: object) -> str:
    """A value as a message quotes it: YAML spellings for booleans and null, short reprs otherwise."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject_duplicate_keys(node: yaml.Node, path: FieldPath, source: str, seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # aliases may make the graph cyclic
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.id}>"
            if name in keys and name != "<<":
                raise YamlProblem(format_problem(source, key.start_mark.line + 1, (*path, name), "duplicate key"))
            keys.add(name)
            _reject_duplicate_keys(value, (*path, name), source, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*path, i), source, seen_nodes)


def _node_at(root: yaml.Node | None, path: FieldPath) -> tuple[yaml.Node | None, yaml.Node | None]:
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


def _describe(err: Any, root: yaml.Node | None, describe: Describe | None) -> tuple[int, int, FieldPath, str]:
    """A jsonschema error as (line, rank, field path, message); rank orders errors found on the same line."""
    special = describe(err) if describe is not None else None
    if special is not None:
        rank, special_path, msg, key_line = special
        return line_of(root, special_path, key=key_line), rank, special_path, msg
    path: FieldPath = tuple(err.absolute_path)
    v, inst, schema, key_line, rank = err.validator, err.instance, err.schema, False, 3
    if v == "type":
        where = "" if path else " at the top level"
        rank, msg = 1, f"expected {_type_names(err.validator_value)}{where}, got {show(inst)}"
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
        msg = f"must be {bounds}, got {show(inst)}"
    elif v == "enum":
        msg = f"expected one of: {', '.join(map(str, err.validator_value))}; got {show(inst)}"
    elif v == "pattern":
        msg = f"expected {schema.get('x-expected', 'a match for ' + err.validator_value)}, got {show(inst)}"
    elif v in ("minItems", "maxItems"):
        n = err.validator_value
        msg = f"expected {'at least' if v == 'minItems' else 'at most'} {n} item{'s' * (n != 1)}, got {len(inst)}"
    elif v == "minLength":
        msg = "must not be empty"
    elif v == "maxLength":
        msg = f"must be at most {err.validator_value} characters, got {len(inst)}"
    else:
        rank, msg = 4, str(err.message)
    return line_of(root, path, key=key_line), rank, path, msg


def _type_names(types: str | list[str]) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer"}
    names |= {"number": "a number", "boolean": "true or false", "null": "null"}
    return " or ".join(names.get(t, t) for t in ([types] if isinstance(types, str) else types))
