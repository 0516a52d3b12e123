"""How gather_using_ai fills its ``parameters`` from the caller's words, without a language model (pure).

The caller's words are known: they are the ``say`` text of the scenario. Each final utterance fills the
properties still missing, in the order the schema lists them, by their JSON Schema::

    parameters: {"properties": {"age": {"type": "integer"}, "city": {"type": "string"}}, "required": ["age"]}
    "I'm 29 and I live in Paris"  ->  {"age": 29, "city": "I'm 29 and I live in Paris"}

- ``enum``: the first of its values the words contain (whole words, any case), as written in the enum;
- ``integer`` / ``number``: the numbers written in digits, in order (each numeric property takes the next);
- ``boolean``: the first yes-word (yes, yeah, yep, sure, correct, true) or no-word (no, nope, nah, false,
  incorrect);
- ``string`` (or no type): the whole utterance, for one such property per utterance;
- ``object``, ``array`` and ``null`` are never filled.

The gather is complete when every ``required`` property is filled; without ``required``, after the first
utterance (docs/ai.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_WORD = re.compile(r"[\w'-]+")
YES = frozenset({"yes", "yeah", "yep", "sure", "correct", "true"})
NO = frozenset({"no", "nope", "nah", "false", "incorrect"})


def properties(parameters: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The properties of a parameters schema that are schemas themselves (anything else is ignored)."""
    found = parameters.get("properties")
    if not isinstance(found, Mapping):
        return {}
    return {str(name): schema for name, schema in found.items() if isinstance(schema, Mapping)}


def required(parameters: Mapping[str, Any]) -> list[str]:
    names = parameters.get("required")
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def fill(parameters: Mapping[str, Any], text: str, result: dict[str, Any]) -> list[str]:
    """Fill ``result`` from one utterance; the names of the properties it filled."""
    numbers = iter(_NUMBER.findall(text))
    words = [word.lower() for word in _WORD.findall(text)]
    filled: list[str] = []
    took_text = False
    for name, schema in properties(parameters).items():
        if name in result:
            continue
        value = _value(schema, text, words, numbers, took_text)
        if value is None:
            continue
        took_text = took_text or isinstance(value, _Text)
        result[name] = str(value) if isinstance(value, _Text) else value
        filled.append(name)
    return filled


def is_complete(parameters: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    """Every required property is filled (always true without ``required``)."""
    return all(name in result for name in required(parameters))


class _Text(str):
    """The whole utterance, given to a free-text property (at most one per utterance)."""


def _value(schema: Mapping[str, Any], text: str, words: list[str], numbers: Iterator[str], took_text: bool) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list):
        return next((choice for choice in enum if _says(words, choice)), None)
    kind = schema.get("type", "string")
    if isinstance(kind, list):  # ["string", "null"]: the type besides null
        kind = next((each for each in kind if each != "null"), "null")
    if kind in ("integer", "number"):
        number = next(numbers, None)
        if number is None:
            return None
        value = float(number)
        if not math.isfinite(value):  # hundreds of digits said in a row: no number a form could hold
            return None
        return int(value) if kind == "integer" or value.is_integer() else value
    if kind == "boolean":
        return next((word in YES for word in words if word in YES or word in NO), None)
    if kind == "string" and not took_text:
        return _Text(text)
    return None


def _says(words: list[str], choice: object) -> bool:
    if not isinstance(choice, str | int | float) or isinstance(choice, bool):
        return False
    wanted = [word.lower() for word in _WORD.findall(str(choice))]
    if not wanted:
        return False
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))
