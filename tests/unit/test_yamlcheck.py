"""yamlcheck parses with libyaml when PyYAML has it, and reports problems in the pure-Python parser's words."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.scenarios import yamlcheck

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"


def _lines(node: yaml.Node | None) -> list[tuple[str, int]]:
    """Every node's tag and line, depth first: what error messages point at."""
    if node is None:
        return []
    found = [(node.tag, node.start_mark.line)]
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found += _lines(key) + _lines(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _lines(item)
    return found


def test_libyaml_is_used_when_available():
    assert yamlcheck._FAST_LOADER is getattr(yaml, "CSafeLoader", None)


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_both_parsers_give_the_same_data_and_lines(path, monkeypatch):
    text = path.read_text(encoding="utf-8")
    fast_root, fast_data = yamlcheck.compose(text, str(path))
    monkeypatch.setattr(yamlcheck, "_FAST_LOADER", None)
    root, data = yamlcheck.compose(text, str(path))
    assert fast_data == data
    assert _lines(fast_root) == _lines(root)


@pytest.mark.parametrize(
    "text",
    [
        "steps: [tone\n",
        "a: 1\n---\nb: 2\n",
        "a: *missing\n",
        "\t- tab\n",
        "a: 'open\n",
        "silence:\t{ms: 100}\n",  # libyaml would accept these two tabs; PyYAML does not
        "inbound:\n  - silence: {ms: 100}\t\n",
    ],
)
def test_a_refused_file_is_reported_in_the_pure_parsers_words(text):
    with pytest.raises(yamlcheck.YamlProblem) as fast:
        yamlcheck.compose(text, "f.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlcheck, "_FAST_LOADER", None)
        with pytest.raises(yamlcheck.YamlProblem) as pure:
            yamlcheck.compose(text, "f.yaml")
    assert str(fast.value) == str(pure.value)
    assert str(fast.value).startswith("f.yaml:")


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "pure-python"])
def test_duplicate_keys_are_refused_by_either_parser(fast, monkeypatch):
    if not fast:
        monkeypatch.setattr(yamlcheck, "_FAST_LOADER", None)
    with pytest.raises(yamlcheck.YamlProblem, match=r"^f.yaml:2: a: duplicate key$"):
        yamlcheck.compose("a: 1\na: 2\n", "f.yaml")


def test_a_byte_order_mark_inside_the_text_is_read_as_pyyaml_reads_it(monkeypatch):
    text = "x: &a {k: 1}\ny:\n\ufeff  <<: [*a, *a]\n"  # libyaml would skip the mark and merge into y
    _root, data = yamlcheck.compose(text, "f.yaml")
    monkeypatch.setattr(yamlcheck, "_FAST_LOADER", None)
    assert data == yamlcheck.compose(text, "f.yaml")[1] and data["y"] is None
