"""emulator.scenarios.number_map: called number -> scenario, with one-line file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.scenarios.loader import ScenarioError
from emulator.scenarios.number_map import ScenarioMap

GOOD = '# numbers are quoted\n"+15550001001": ivr-menu\n"+15550001002": ./calls/angry.yaml\n"+44207946000": tone\n'


def write_map(tmp_path: Path, text: str) -> Path:
    (tmp_path / "calls").mkdir(exist_ok=True)
    (tmp_path / "calls" / "angry.yaml").write_text("inbound:\n  - silence: {ms: 10}\n")
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


def test_for_number_gives_names_and_absolute_paths(tmp_path):
    mapping = ScenarioMap.load(write_map(tmp_path, GOOD))
    assert mapping.for_number("+15550001001") == "ivr-menu"
    assert mapping.for_number(" +44207946000 ") == "tone"
    assert mapping.for_number("+15550001002") == str((tmp_path / "calls" / "angry.yaml").resolve())
    assert mapping.for_number("+15550009999") is None
    assert dict(mapping.lines) == {"+15550001001": 2, "+15550001002": 3, "+44207946000": 4}
    mapping.check({"ivr-menu", "tone"})


BAD = [
    ("unquoted number", '"+15550001001": tone\n+15550001002: tone\n',
     '2: +15550001002: put it in quotes ("+15550001002"): unquoted, YAML reads it as an integer'),
    ("a word", '"+15550001001": tone\nyes: tone\n',
     '2: yes: put it in quotes ("yes"): unquoted, YAML reads it as true or false'),
    ("not E.164", '"+15550001001": tone\n"5550001002": tone\n',
     "2: 5550001002: expected an E.164 number such as \"+15550001001\" (+, then 2 to 15 digits), got '5550001002'"),
    ("value not text", '"+15550001001": [tone]\n', "1: +15550001001: expected a string, got a list"),
    ("empty value", '"+15550001001": ""\n', "1: +15550001001: must not be empty"),
    ("missing scenario file", '"+15550001001": tone\n"+15550001002": calls/none.yaml\n',
     "2: +15550001002: cannot read scenario 'calls/none.yaml': No such file"),
    ("duplicate number", '"+15550001001": tone\n"+15550001001": ivr-menu\n', "2: +15550001001: duplicate key"),
    ("a list", "- +15550001001\n", "1: expected a mapping at the top level, got a list"),
    ("bad YAML", '"+15550001001": [tone\n', "2: invalid YAML: expected ',' or ']', but got '<stream end>'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_map_is_one_line_error(tmp_path, text, expected):
    path = write_map(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        ScenarioMap.load(path)
    assert str(info.value) == f"{path}:{expected}"


def test_check_names_unknown_scenarios_at_their_line(tmp_path):
    path = write_map(tmp_path, GOOD)
    with pytest.raises(ScenarioError) as info:
        ScenarioMap.load(path).check({"tone", "default"})
    assert (
        str(info.value)
        == f"{path}:2: +15550001001: no such scenario 'ivr-menu' (known: default, tone; or give a .yaml path)"
    )


def test_check_loads_mapped_files_and_reports_their_own_errors(tmp_path):
    path = write_map(tmp_path, GOOD)
    (tmp_path / "calls" / "angry.yaml").write_text("inbound: []\n")
    with pytest.raises(ScenarioError, match=r"angry\.yaml:1: inbound: expected at least 1 item, got 0$"):
        ScenarioMap.load(path).check({"ivr-menu", "tone"})


def test_unreadable_map(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.yaml: cannot read scenario map: No such file or directory$"):
        ScenarioMap.load(tmp_path / "nope.yaml")


def test_the_scenario_map_flag_and_variable_reach_the_settings(monkeypatch, tmp_path):
    from emulator import cli

    served = []
    monkeypatch.setattr(cli, "serve", lambda settings: served.append(settings) or 0)
    assert cli.main(["--scenario-map", "calls.yaml"], environ={}) == 0
    assert cli.main([], environ={"TELNYX_EMULATOR_SCENARIO_MAP": "/etc/map.yaml"}) == 0
    assert [s.scenario_map for s in served] == [Path("calls.yaml"), Path("/etc/map.yaml")]
