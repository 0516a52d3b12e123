"""emulator.scenarios: one-line errors with line numbers, exact rendering, and the shipped scenarios."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import soundfile as sf

from emulator import scenarios, synth
from emulator.scenarios import (
    Dtmf,
    DtmfEvent,
    Play,
    ScenarioError,
    Silence,
    Tone,
    default_scenario_dir,
    load_scenario,
    load_scenarios,
    parse_scenario,
    render_track,
)
from tests.unit.test_synth import detect_dtmf, fft_peak_hz, peak_dbfs_from_rms

STEPS = "dtmf, play, silence, tone"

BAD = [
    ("unknown top-level key", "description: x\ninbound:\n  - silence: {ms: 10}\ncolour: blue\n",
     "4: colour: unknown field (expected one of: callee, description, inbound, outbound)"),
    ("unknown step", "inbound:\n  - silence: {ms: 10}\n  - sing: {song: la}\n",
     f"3: inbound[1]: unknown step 'sing' (expected one of: {STEPS})"),
    ("frequency not a number", "description: IVR\ninbound:\n  - silence: {ms: 10}\n  - silence: {ms: 10}\n"
     "  - tone:\n      ms: 100\n      frequency: abc\n",
     "7: inbound[2].tone.frequency: expected a number, got 'abc'"),
    ("frequency list item", "inbound:\n  - tone: {frequency: [440, x], ms: 100}\n",
     "2: inbound[0].tone.frequency[1]: expected a number, got 'x'"),
    ("too many frequencies", "inbound:\n  - tone: {frequency: [1, 2, 3, 4, 5], ms: 100}\n",
     "2: inbound[0].tone.frequency: expected at most 4 items, got 5"),
    ("no frequencies", "inbound:\n  - tone: {frequency: [], ms: 100}\n",
     "2: inbound[0].tone.frequency: expected at least 1 item, got 0"),
    ("frequency too high", "inbound:\n  - tone: {frequency: 9000, ms: 100}\n",
     "2: inbound[0].tone.frequency: must be between 20 and 8000, got 9000"),
    ("ms as string", "inbound:\n  - silence: {ms: '500'}\n",
     "2: inbound[0].silence.ms: expected an integer, got '500'"),
    ("ms fractional", "inbound:\n  - silence: {ms: 1.5}\n", "2: inbound[0].silence.ms: expected an integer, got 1.5"),
    ("ms zero", "inbound:\n  - silence: {ms: 0}\n", "2: inbound[0].silence.ms: must be between 1 and 600000, got 0"),
    ("ms nan", "inbound:\n  - silence: {ms: .nan}\n", "2: inbound[0].silence.ms: expected an integer, got nan"),
    ("level positive", "inbound:\n  - tone: {frequency: 440, ms: 100, level: 3}\n",
     "2: inbound[0].tone.level: must be between -60 and 0, got 3"),
    ("level inf", "inbound:\n  - tone: {frequency: 440, ms: 100, level: .inf}\n",
     "2: inbound[0].tone.level: expected a number, got inf"),
    ("level is bool", "inbound:\n  - tone: {frequency: 440, ms: 100, level: yes}\n",
     "2: inbound[0].tone.level: expected a number, got true"),
    ("bad digits", "inbound:\n  - dtmf: {digits: '12x'}\n",
     "2: inbound[0].dtmf.digits: expected DTMF digits (0-9, *, #, A-D), got '12x'"),
    ("empty digits", "inbound:\n  - dtmf: {digits: ''}\n",
     "2: inbound[0].dtmf.digits: expected DTMF digits (0-9, *, #, A-D), got ''"),
    ("digits as number", "inbound:\n  - dtmf: {digits: 123}\n",
     "2: inbound[0].dtmf.digits: expected a string, got 123"),
    ("dtmf too short", "inbound:\n  - dtmf: {digits: '1', ms: 20}\n",
     "2: inbound[0].dtmf.ms: must be between 40 and 2000, got 20"),
    ("gap negative", "inbound:\n  - dtmf: {digits: '1', gap_ms: -1}\n",
     "2: inbound[0].dtmf.gap_ms: must be between 0 and 5000, got -1"),
    ("play gain too high", "inbound:\n  - play: {file: a.wav, level: 20}\n",
     "2: inbound[0].play.level: must be between -60 and 12, got 20"),
    ("play empty file", "inbound:\n  - play: {file: ''}\n", "2: inbound[0].play.file: must not be empty"),
    ("unknown step field", "inbound:\n  - tone:\n      frequency: 440\n      ms: 100\n      volume: -3\n",
     "5: inbound[0].tone.volume: unknown field (expected one of: frequency, level, ms)"),
    ("missing step field", "inbound:\n  - silence: {}\n", "2: inbound[0].silence.ms: missing required field"),
    ("missing inbound", "# no audio\ndescription: x\n", "2: inbound: missing required field"),
    ("empty inbound", "inbound: []\n", "1: inbound: expected at least 1 item, got 0"),
    ("step as string", "inbound:\n  - silence\n", "2: inbound[0]: expected a mapping, got 'silence'"),
    ("step with two keys", "inbound:\n  - {silence: {ms: 1}, tone: {frequency: 440, ms: 1}}\n",
     f"2: inbound[0]: expected exactly one step key (one of: {STEPS}), got silence, tone"),
    ("empty step", "inbound:\n  - {}\n", f"2: inbound[0]: expected exactly one step key (one of: {STEPS}), got none"),
    ("step body not a mapping", "inbound:\n  - silence: 500\n", "2: inbound[0].silence: expected a mapping, got 500"),
    ("description not a string", "description: 5\ninbound:\n  - silence: {ms: 1}\n",
     "1: description: expected a string, got 5"),
    ("outbound error", "inbound:\n  - silence: {ms: 1}\noutbound:\n  - silence: {ms: 0}\n",
     "4: outbound[0].silence.ms: must be between 1 and 600000, got 0"),
    ("earliest line wins", "inbound:\n  - silence: {ms: 0}\n  - tone: {frequency: 1, ms: 1}\n",
     "2: inbound[0].silence.ms: must be between 1 and 600000, got 0"),
    ("duplicate key", "inbound:\n  - tone:\n      frequency: 440\n      ms: 100\n      ms: 200\n",
     "5: inbound[0].tone.ms: duplicate key"),
    ("top level is a list", "- silence: {ms: 1}\n", "1: expected a mapping at the top level, got a list"),
    ("empty file", "", "1: expected a mapping at the top level, got null"),
    ("bad YAML flow", "inbound:\n  - silence: {ms: 10\n  - tone: {frequency: 440}\n",
     "3: invalid YAML: expected ',' or '}', but got ':'"),
    ("bad YAML tab", "inbound:\n  - silence: {ms: 10}\n\t- tone\n",
     "3: invalid YAML: found character '\\t' that cannot start any token"),
    ("two documents", "inbound: []\n---\ninbound: []\n",
     "2: invalid YAML: expected a single document in the stream, but found another document"),
    ("missing audio file", "inbound:\n  - silence: {ms: 10}\n  - play:\n      level: -3\n      file: audio/x.wav\n",
     "5: inbound[1].play.file: cannot read 'audio/x.wav': No such file or directory"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_scenario_is_one_line_error(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == f"{path}:{expected}"
    assert "\n" not in str(info.value)


def test_error_uses_the_given_source_name(tmp_path):
    with pytest.raises(
        ScenarioError, match=r"^scenarios/ivr\.yaml:3: inbound\[1\]\.tone\.frequency: expected a number"
    ):
        parse_scenario(
            "inbound:\n  - silence: {ms: 1}\n  - tone: {frequency: abc, ms: 1}\n", "scenarios/ivr.yaml", tmp_path
        )


def test_unreadable_audio_file(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(ScenarioError) as info:
        parse_scenario("inbound:\n  - play: {file: notes.wav}\n", "x.yaml", tmp_path)
    assert str(info.value) == "x.yaml:2: inbound[0].play.file: cannot read 'notes.wav': Format not recognised"
    with pytest.raises(ScenarioError, match=r"^x\.yaml:2: inbound\[0\]\.play\.file: cannot read '\.': Is a directory$"):
        parse_scenario("inbound:\n  - play: {file: .}\n", "x.yaml", tmp_path)


def test_unreadable_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.yaml: cannot read scenario: No such file or directory$"):
        load_scenario(tmp_path / "nope.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"description: caf\xe9\n")
    with pytest.raises(ScenarioError, match=r"latin1\.yaml: not UTF-8 text"):
        load_scenario(tmp_path / "latin1.yaml")


def test_parse_builds_steps_with_defaults(tmp_path):
    text = "inbound:\n  - silence: {ms: 5}\n  - tone: {frequency: [440, 480], ms: 7}\n  - dtmf: {digits: '#9'}\n"
    scenario = parse_scenario(text, "dir/my-call.yaml", tmp_path)
    assert scenario.name == "my-call"
    assert scenario.source == "dir/my-call.yaml"
    assert scenario.description == ""
    assert scenario.inbound == (Silence(5), Tone((440.0, 480.0), 7, -12.0), Dtmf("#9", 100, 100, -10.0))
    assert scenario.outbound == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.inbound[0].ms = 6  # type: ignore[misc]


def test_schema_and_dataclasses_agree():
    """One list of step types and one set of defaults, whether a step comes from YAML or from code."""
    schema = json.loads(scenarios.schema_path().read_text())
    defs = schema["$defs"]
    assert sorted(defs["step"]["properties"]) == defs["step"]["propertyNames"]["enum"] == sorted(scenarios._STEP_TYPES)
    for cls, fields in ((Tone, ["level"]), (Dtmf, ["ms", "gap_ms", "level"]), (Play, ["level"])):
        for name in fields:
            assert defs[cls.kind]["properties"][name]["default"] == cls.__dataclass_fields__[name].default


@pytest.mark.parametrize("rate", [8000, 16000])
def test_render_durations_are_exact_in_samples(tmp_path, rate):
    text = (
        "inbound:\n  - silence: {ms: 500}\n  - tone: {frequency: 1000, ms: 1000}\n"
        "  - dtmf: {digits: '123', ms: 100, gap_ms: 100}\n  - silence: {ms: 20}\n"
        "outbound:\n  - silence: {ms: 1000}\n"
    )
    scenario = parse_scenario(text, "t.yaml", tmp_path)
    inbound = render_track(scenario.inbound, rate)
    assert inbound.pcm.dtype == np.int16
    assert inbound.sample_rate == rate
    assert len(inbound.pcm) == (500 + 1000 + 3 * 100 + 2 * 100 + 20) * rate // 1000
    assert inbound.duration_ms == 2020
    assert inbound.dtmf == (DtmfEvent(1500, "1", 100), DtmfEvent(1700, "2", 100), DtmfEvent(1900, "3", 100))
    assert len(render_track(scenario.outbound, rate).pcm) == rate
    assert render_track((), rate).duration_ms == 0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_render_dtmf_events_point_at_the_right_tones(tmp_path, rate):
    scenario = parse_scenario("inbound:\n  - silence: {ms: 250}\n  - dtmf: {digits: '9*0#D', ms: 60, gap_ms: 40}\n",
                              "d.yaml", tmp_path)  # fmt: skip
    track = render_track(scenario.inbound, rate)
    assert [e.digit for e in track.dtmf] == list("9*0#D")
    for event in track.dtmf:
        start = event.at_ms * rate // 1000
        assert detect_dtmf(track.pcm[start : start + event.duration_ms * rate // 1000], rate) == event.digit
        gap = track.pcm[start + event.duration_ms * rate // 1000 : start + 100 * rate // 1000]
        assert not gap.any()


@pytest.mark.parametrize("rate", [8000, 16000])
def test_render_tone_frequency_and_level(tmp_path, rate):
    scenario = parse_scenario("inbound:\n  - tone: {frequency: 440, ms: 1000, level: -20}\n", "t.yaml", tmp_path)
    pcm = render_track(scenario.inbound, rate).pcm
    assert fft_peak_hz(pcm, rate) == pytest.approx(440, abs=1)
    assert peak_dbfs_from_rms(pcm[rate // 10 : -rate // 10]) == pytest.approx(-20, abs=0.5)


def test_render_is_deterministic():
    scenario = load_scenario(default_scenario_dir() / "default.yaml")
    a, b = render_track(scenario.inbound, 8000), render_track(scenario.inbound, 8000)
    assert np.array_equal(a.pcm, b.pcm) and a.dtmf == b.dtmf


def test_play_resamples_mixes_and_applies_gain(tmp_path):
    n = 22050 + 1234
    t = np.arange(n) / 22050
    left = 0.5 * np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "clip.wav", np.stack([left, left], axis=1), 22050, subtype="PCM_16")  # stereo, 22.05 kHz
    scenario = parse_scenario(
        "inbound:\n  - play: {file: clip.wav}\n  - play: {file: clip.wav, level: -6}\n", "p.yaml", tmp_path
    )
    play = scenario.inbound[0]
    assert isinstance(play, Play)
    assert play.path == (tmp_path / "clip.wav").resolve() and play.path.is_absolute()
    assert play.sample_rate == 22050 and play.samples.ndim == 1 and len(play.samples) == n
    assert not play.samples.flags.writeable
    track = render_track(scenario.inbound, 8000)
    each = round(n * 8000 / 22050)
    assert len(track.pcm) == 2 * each
    loud, quiet = track.pcm[:each], track.pcm[each:]
    assert fft_peak_hz(loud, 8000) == pytest.approx(300, abs=1)
    assert peak_dbfs_from_rms(loud[800:-800]) == pytest.approx(20 * math.log10(0.5), abs=0.5)
    assert peak_dbfs_from_rms(quiet[800:-800]) == pytest.approx(20 * math.log10(0.5) - 6, abs=0.5)


def test_play_at_its_own_rate_is_bit_exact(tmp_path):
    pcm = (np.arange(-16000, 16000, 7) % 65536 - 32768).astype(np.int16)
    sf.write(tmp_path / "raw.wav", pcm, 16000, subtype="PCM_16")
    scenario = parse_scenario("inbound:\n  - play: {file: raw.wav}\n", "p.yaml", tmp_path)
    assert np.array_equal(render_track(scenario.inbound, 16000).pcm, pcm)


def test_shipped_scenarios_load_and_render():
    found = load_scenarios(default_scenario_dir())
    assert {"default", "tone", "silence", "dtmf"} <= set(found)
    for name, scenario in found.items():
        assert scenario.name == name and scenario.description
        for rate in (8000, 16000):
            assert len(render_track(scenario.inbound, rate).pcm) > 0
    assert render_track(found["tone"].inbound, 8000).duration_ms == 2000
    assert fft_peak_hz(render_track(found["tone"].inbound, 8000).pcm, 8000) == pytest.approx(1000, abs=1)
    assert not render_track(found["silence"].inbound, 16000).pcm.any()
    assert render_track(found["silence"].inbound, 16000).duration_ms == 3000
    default = render_track(found["default"].inbound, 16000)
    assert 5000 <= default.duration_ms <= 8000
    assert "".join(e.digit for e in default.dtmf) == "123"


def test_shipped_speech_clip_is_small_16k_mono():
    info = sf.info(default_scenario_dir() / "audio" / "hello.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert (default_scenario_dir() / "audio" / "hello.wav").stat().st_size < 250_000


def test_load_scenarios_reads_yaml_and_yml_only_not_recursive(tmp_path):
    (tmp_path / "a.yaml").write_text("inbound:\n  - silence: {ms: 1}\n")
    (tmp_path / "b.yml").write_text("inbound:\n  - silence: {ms: 2}\n")
    (tmp_path / "notes.txt").write_text("not a scenario")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("broken: [")
    assert sorted(load_scenarios(tmp_path)) == ["a", "b"]
    (tmp_path / "z.yaml").write_text("inbound: []\n")
    with pytest.raises(ScenarioError, match=r"z\.yaml:1: inbound: expected at least 1 item"):
        load_scenarios(tmp_path)
    with pytest.raises(ScenarioError, match="not a directory"):
        load_scenarios(tmp_path / "missing")


def test_synth_and_steps_agree(tmp_path):
    scenario = parse_scenario("inbound:\n  - dtmf: {digits: '5', ms: 80, level: -20}\n", "s.yaml", tmp_path)
    assert np.array_equal(render_track(scenario.inbound, 8000).pcm, synth.dtmf_digit("5", 80, -20, 8000))


def test_every_yaml_example_in_the_docs_is_valid():
    docs = default_scenario_dir().parent / "docs" / "scenarios.md"
    blocks = re.findall(r"```yaml\n(.*?)```", docs.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        scenario = parse_scenario(block, f"docs/scenarios.md#example{i}", default_scenario_dir())
        assert render_track(scenario.inbound, 8000).duration_ms > 0
