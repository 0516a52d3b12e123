"""MediaLibrary: scenario names and scenario files are told apart, and so is their cached media."""

from __future__ import annotations

import pytest

from emulator.media.library import MediaLibrary
from emulator.scenarios.loader import ScenarioError, default_scenario_dir, load_scenarios


@pytest.fixture(scope="module")
def shipped():
    return load_scenarios(default_scenario_dir())


def test_a_file_named_like_a_shipped_scenario_does_not_take_its_place(shipped, tmp_path):
    library = MediaLibrary(shipped, "default")
    (tmp_path / "tone.yaml").write_text("inbound:\n  - silence: {ms: 500}\n")
    assert library.media("tone", "PCMU").duration_ms == 2000  # the shipped 2 s tone, now cached
    key = library.resolve(str(tmp_path / "tone.yaml"))
    assert key == str((tmp_path / "tone.yaml").resolve()) and key != "tone"
    assert library.media(key, "PCMU").duration_ms == 500  # the file, not the cached shipped tone
    assert library.resolve("tone") == "tone"
    assert library.media("tone", "PCMA").duration_ms == 2000  # the shipped tone, not the file
    assert library.scenarios["tone"] is shipped["tone"]


def test_a_file_is_loaded_once_whichever_way_its_path_is_written(shipped, tmp_path, monkeypatch):
    library = MediaLibrary(shipped, "default")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "call.yml").write_text("inbound:\n  - tone: {frequency: 440, ms: 100}\n")
    monkeypatch.chdir(tmp_path)
    key = library.resolve("mine/call.yml")
    loaded = library.scenarios[key]
    assert library.resolve(str(tmp_path / "mine" / "call.yml")) == key
    assert library.resolve("./mine/../mine/call.yml") == key
    assert library.resolve(key) == key and library.scenarios[key] is loaded


def test_a_default_given_as_a_file_is_keyed_by_its_path(shipped, tmp_path):
    (tmp_path / "silence.yaml").write_text("inbound:\n  - tone: {frequency: 440, ms: 100}\n")
    library = MediaLibrary(shipped, str(tmp_path / "silence.yaml"))
    assert library.default == str((tmp_path / "silence.yaml").resolve())
    assert library.media(library.default, "PCMU").duration_ms == 100
    assert library.media("silence", "PCMU").duration_ms == 3000


def test_unknown_names_and_unreadable_files_are_scenario_errors(shipped, tmp_path):
    library = MediaLibrary(shipped, "default")
    (tmp_path / "a.yaml").write_text("inbound:\n  - silence: {ms: 1}\n")
    library.resolve(str(tmp_path / "a.yaml"))
    with pytest.raises(ScenarioError) as info:
        library.resolve("nope")
    assert str(info.value).startswith("nope: no such scenario (known: barge-in, default, dtmf, ")
    assert str(tmp_path) not in str(info.value)  # loaded files are keys, not names to suggest
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read scenario: No such file or directory$"):
        library.resolve(str(tmp_path / "missing.yaml"))
