"""jsonschema-rs (the fast yes/no) and jsonschema (the reference, which explains failures) agree on validity.

A body the compiled validator accepts is answered 2xx without asking jsonschema, so an acceptance that
jsonschema would refuse lets a bad request through. For every bundled schema this generates bodies
field by field from the schema itself: values matching each pattern (hypothesis' ``from_regex``), the
enum members, numbers at and past the bounds, the same values with a character inserted, control and
Unicode whitespace characters, and arbitrary JSON. Derandomized; ``FUZZ_EXAMPLES=2000`` explores further.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from emulator.api.schemas import SchemaRegistry, default_schema_dir

jsonschema_rs = pytest.importorskip("jsonschema_rs")

REGISTRY = SchemaRegistry.load(default_schema_dir(), meta_check=False)
SCHEMAS = {
    path.name.removesuffix(".schema.json"): json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(default_schema_dir().glob("*.schema.json"))
}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
# Characters where regex engines and format checks are most likely to differ.
ODD = st.sampled_from(
    ["\n", "\r", "\t", " ", "\x00", "\x1c", "\x1f", "\x7f", "\x85", "\xa0", "\u2028", "\u3000", "é", "😀"]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _mutated(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A value with one odd character inserted, appended or prepended."""

    def insert(value: str, odd: str, at: int) -> str:
        at %= len(value) + 1
        return value[:at] + odd + value[at:]

    return st.builds(insert, values, ODD, st.integers(0, 500))


def values_for(
    schema: dict[str, Any], root: dict[str, Any], depth: int = 0
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(values that should pass, values that mostly should not) for one subschema."""
    schema = _resolve(schema, root)
    good: list[st.SearchStrategy[Any]] = []
    bad: list[st.SearchStrategy[Any]] = [JSON]
    if "enum" in schema:
        good.append(st.sampled_from(schema["enum"]))
    if "const" in schema:
        good.append(st.just(schema["const"]))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        matching = st.from_regex(pattern.removesuffix("(?!\\n)"), fullmatch=True)
        good.append(matching)
        bad += [_mutated(matching), matching.map(lambda s: s + "\n")]
    if schema.get("format") == "uuid":
        uuids = st.uuids().map(str)
        good += [uuids, uuids.map(str.upper)]
        bad += [_mutated(uuids), uuids.map(lambda u: "{" + u + "}")]
    kinds = schema.get("type")
    if kinds in ("integer", "number"):
        low, high = schema.get("minimum", -(2**40)), schema.get("maximum", 2**40)
        good.append(st.integers(low, high))
        bad += [st.integers(low - 2, high + 2), st.sampled_from([low - 1, high + 1, 2**64, float(low), True])]
    if kinds == "string" and not good:
        good.append(st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 20)))
        longest = schema.get("maxLength", 20)
        # Hypothesis draws strings of a few thousand characters at most: a longer limit (a TeXML document's 1 MiB)
        # is passed by one string just over it.
        too_long = st.text(min_size=longest, max_size=longest + 2) if longest <= 4000 else st.just("x" * (longest + 1))
        bad.append(too_long)
    if kinds == "boolean":
        good.append(st.booleans())
    if kinds == "array" and depth < 3:
        item_good, item_any = values_for(schema.get("items", {}), root, depth + 1)
        low, high = schema.get("minItems", 0), schema.get("maxItems", 3)
        good.append(st.lists(item_good, min_size=low, max_size=min(high, low + 3)))
        bad.append(st.lists(item_any, max_size=high + 1))
    if (kinds == "object" or "properties" in schema) and depth < 3:
        good.append(bodies_for(schema, root, depth + 1, clean=True))
        bad.append(bodies_for(schema, root, depth + 1))
    return (st.one_of(good) if good else JSON), st.one_of(bad)


def bodies_for(
    schema: dict[str, Any], root: dict[str, Any], depth: int = 0, *, clean: bool = False
) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies of good values; unless ``clean``, half of them then get one bad value, lose a required
    field or gain an unknown one."""
    schema = _resolve(schema, root)
    properties = schema.get("properties", {})
    required = sorted(set(schema.get("required", [])) & set(properties))
    fields = {name: values_for(sub, root, depth) for name, sub in properties.items()}
    good = st.fixed_dictionaries(
        {name: pair[0] for name, pair in fields.items() if name in required},
        optional={name: pair[0] for name, pair in fields.items() if name not in required},
    )
    if clean or not fields:
        return good

    @st.composite
    def spoiled(draw: st.DrawFn) -> dict[str, Any]:
        body = dict(draw(good))
        how = draw(st.sampled_from(["none", "bad value", "bad value", "drop required", "unknown field"]))
        if how == "bad value":
            name = draw(st.sampled_from(sorted(fields)))
            body[name] = draw(fields[name][1])
        elif how == "drop required" and required:
            body.pop(draw(st.sampled_from(required)), None)
        elif how == "unknown field":
            body[draw(st.text(max_size=6))] = draw(JSON)
        return body

    return spoiled()


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["pattern"]} if isinstance(node.get("pattern"), str) else set()
        return found.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


PATTERNS = sorted(set().union(*(_patterns(schema) for schema in SCHEMAS.values())))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_means_the_same_to_both_regex_engines(pattern):
    """Matching strings with an odd character put anywhere: Python's re and jsonschema-rs agree."""
    schema = {"type": "string", "pattern": pattern}
    reference = jsonschema.Draft202012Validator(schema)
    fast = jsonschema_rs.Draft202012Validator(schema)
    matching = st.from_regex(pattern.removesuffix("(?!\\n)"), fullmatch=True)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(matching, _mutated(matching), _mutated(_mutated(matching))))
    def agree(value: str) -> None:
        assert fast.is_valid(value) == reference.is_valid(value), repr(value)

    agree()


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_fast_validator_accepts_exactly_what_jsonschema_accepts(name):
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(bodies_for(SCHEMAS[name], SCHEMAS[name]))
    def agree(body: dict[str, Any]) -> None:
        try:
            fast = bool(REGISTRY.fast_validator(name).is_valid(body))
        except ValueError:
            return  # a value jsonschema-rs cannot take: jsonschema alone decides, as in validate()
        problems = REGISTRY.validator(name).iter_errors(body)
        assert fast == (next(problems, None) is None), body

    agree()


def test_validate_skips_jsonschema_only_for_bodies_the_fast_validator_accepts():
    valid = {"stream_url": "wss://example.com/media", "stream_track": "both_tracks"}
    assert REGISTRY.fast_accepts("streaming_start", valid) and REGISTRY.validate("streaming_start", valid) == []
    invalid = {"stream_url": "wss://exa\x1cmple.com/media"}
    assert not REGISTRY.fast_accepts("streaming_start", invalid)
    assert [p.pointer for p in REGISTRY.validate("streaming_start", invalid)] == ["/stream_url"]
    # A value the compiled validator cannot take (a lone surrogate) is decided by jsonschema.
    assert not REGISTRY.fast_accepts("streaming_start", {"stream_url": "wss://a/\ud800"})
    assert REGISTRY.validate("streaming_start", {"stream_url": "wss://a/\ud800"}) == []
