"""ScenarioMap: which scenario a call plays, by the number that was called (``--scenario-map FILE``).

The file is a YAML mapping of E.164 numbers to a scenario name (from the scenario folder) or a ``.yaml``/``.yml``
path (relative to the map file)::

    "+15550001001": voice-bot-question
    "+15550001002": ivr-menu
    "+15550001003": ./my-scenarios/angry-customer.yaml

Numbers must be quoted: unquoted, YAML reads ``+15550001001`` as the integer 15550001001. The file is checked
against ``schemas/scenario_map.schema.json`` with the same one-line ``file:line: field: message`` errors as
scenario files. ``for_number(to)`` is a plain lookup, independent of any loaded scenarios; ``check(known)``
confirms at start-up that every name exists and every path loads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from emulator.resources import data_dir
from emulator.scenarios import yamlcheck
from emulator.scenarios.loader import SCENARIO_SUFFIXES, ScenarioError, load_scenario
from emulator.scenarios.yamlcheck import FieldPath

_YAML_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null"}


def schema_path() -> Path:
    return data_dir("schemas") / "scenario_map.schema.json"


@dataclass(frozen=True, slots=True)
class ScenarioMap:
    source: str
    # number -> scenario name, or the absolute path of a scenario file
    entries: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, source: str, base_dir: Path) -> ScenarioMap:
        try:
            root, data = yamlcheck.compose(text, source)
            _check_keys_are_text(root, source)
            yamlcheck.check(root, data, source, yamlcheck.validator(schema_path()), _describe)
        except yamlcheck.YamlProblem as e:
            raise ScenarioError(str(e)) from None
        entries: dict[str, str] = {}
        lines: dict[str, int] = {}
        for number, value in data.items():
            lines[number] = yamlcheck.line_of(root, (number,), key=True)
            if Path(value).suffix in SCENARIO_SUFFIXES:
                path = (base_dir / value).resolve()
                if not path.is_file():
                    message = f"cannot read scenario {value!r}: No such file"
                    raise ScenarioError(yamlcheck.format_problem(source, lines[number], (number,), message))
                value = str(path)
            entries[number] = value
        return cls(source, MappingProxyType(entries), MappingProxyType(lines))

    @classmethod
    def load(cls, path: Path) -> ScenarioMap:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ScenarioError(f"{path}: cannot read scenario map: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ScenarioError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        return cls.parse(text, str(path), path.parent)

    def for_number(self, to: str) -> str | None:
        """The scenario (a name, or a scenario file's absolute path) for calls to ``to``; None: not mapped."""
        return self.entries.get(to.strip())

    def check(self, known: Collection[str]) -> None:
        """Every name is one of ``known`` and every file loads; else ScenarioError naming the map's line."""
        for number, value in self.entries.items():
            if Path(value).suffix in SCENARIO_SUFFIXES:
                load_scenario(Path(value))  # its own errors name its own file and line
            elif value not in known:
                names = ", ".join(sorted(known)) or "none"
                message = f"no such scenario {value!r} (known: {names}; or give a .yaml path)"
                raise ScenarioError(yamlcheck.format_problem(self.source, self.lines[number], (number,), message))


def _check_keys_are_text(root: yaml.Node | None, source: str) -> None:
    """Catch unquoted numbers before the schema sees them: by then +1555... has become 1555... and lost its line."""
    if not isinstance(root, yaml.MappingNode):
        return  # the schema reports it
    for key, _ in root.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:str":
            kind = _YAML_KINDS.get(key.tag.rsplit(":", 1)[-1], "something other than text")
            message = f'put it in quotes ("{key.value}"): unquoted, YAML reads it as {kind}'
            raise yamlcheck.YamlProblem(f"{source}:{key.start_mark.line + 1}: {key.value}: {message}")


def _describe(err: Any) -> tuple[int, FieldPath, str, bool] | None:
    if "propertyNames" in err.absolute_schema_path:  # a key that is not an E.164 number: point at the key itself
        got = yamlcheck.show(err.instance)
        message = f'expected an E.164 number such as "+15550001001" (+, then 2 to 15 digits), got {got}'
        return 0, (*err.absolute_path, err.instance), message, True
    return None
