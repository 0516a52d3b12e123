"""Scenario loading and steps: one-line errors with line numbers, exact rendering, speech, and the
shipped scenarios."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emulator.scenarios import loader as scenarios, steps, synth, tts
from emulator.scenarios.cursor import End, render_track
from emulator.scenarios.loader import ScenarioError, default_scenario_dir, load_scenario, load_scenarios, parse_scenario
from emulator.scenarios.segments import WaitSegment, compile_track
from emulator.scenarios.steps import (
    Dtmf,
    DtmfEvent,
    Hangup,
    Mix,
    Noise,
    Play,
    Repeat,
    Say,
    Silence,
    Tone,
    Track,
    WaitFor,
    hangup_path,
    walk,
)
from tests.unit.test_synth import detect_dtmf, fft_peak_hz, peak_dbfs_from_rms
from tests.unit.test_tts import fake_speech, refuse

STEPS = "dtmf, hangup, play, repeat, say, silence, tone, wait_for"
OUTBOUND_STEPS = "dtmf, play, repeat, say, silence, tone"
SHIPPED = ["barge-in", "hangup-mid-sentence", "ivr-menu", "silent-caller", "soak-10min", "voice-bot-question"]

BAD = [
    ("fault kind not of its target", "inbound:\n  - silence: {ms: 10}\nfaults:\n  - {target: api, kind: duplicate}\n",
     "4: faults[0].kind: A api fault's kind is one of: status, delay, drop_effect."),
    ("fault without its status", "inbound:\n  - silence: {ms: 10}\nfaults:\n  - target: media\n    kind: loss\n"
     "  - target: api\n    kind: status\n", "6: faults[1].status: missing required field"),
    ("fault naming a scenario",
     "inbound:\n  - silence: {ms: 10}\nfaults:\n  - {target: media, kind: loss, scenario: x}\n",
     "4: faults[0].scenario: a scenario's faults apply to its own calls: remove scenario"),
    ("unknown top-level key", "description: x\ninbound:\n  - silence: {ms: 10}\ncolour: blue\n",
     "4: colour: unknown field (expected one of: at_end, callee, description, faults, gain, inbound, noise, outbound, "
     "refer)"),
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
    ("play max_ms zero", "inbound:\n  - play: {file: a.wav, max_ms: 0}\n",
     "2: inbound[0].play.max_ms: must be between 1 and 600000, got 0"),
    ("say without text", "inbound:\n  - say: {voice: en-us}\n", "2: inbound[0].say.text: missing required field"),
    ("say empty text", "inbound:\n  - say: {text: ''}\n", "2: inbound[0].say.text: must not be empty"),
    ("say text too long", "inbound:\n  - say: {text: " + "a" * 2001 + "}\n",
     "2: inbound[0].say.text: must be at most 2000 characters, got 2001"),
    ("say bad voice", "inbound:\n  - say: {text: hi, voice: '-x'}\n",
     "2: inbound[0].say.voice: expected an espeak-ng voice name such as en-us, en-gb or en-us+f3, got '-x'"),
    ("say too fast", "inbound:\n  - say: {text: hi, wpm: 900}\n",
     "2: inbound[0].say.wpm: must be between 80 and 450, got 900"),
    ("say loud", "inbound:\n  - say: {text: hi, level: 1}\n",
     "2: inbound[0].say.level: must be between -60 and 0, got 1"),
    ("wait_for unknown event", "inbound:\n  - wait_for: {event: app_speech}\n",
     "2: inbound[0].wait_for.event: expected one of: app_audio_end, app_audio_start, mark, speak_start, "
     "speak_end, playback_start, playback_end, dtmf; got 'app_speech'"),
    ("wait_for mark without name", "inbound:\n  - wait_for:\n      event: mark\n",
     "3: inbound[0].wait_for.mark: missing required field"),
    ("wait_for mark with another event", "inbound:\n  - wait_for:\n      event: app_audio_start\n      mark: m\n",
     "4: inbound[0].wait_for.mark: only used with event: mark (this wait is for app_audio_start)"),
    ("wait_for silence_ms with a mark", "inbound:\n  - wait_for: {mark: m, silence_ms: 500}\n",
     "2: inbound[0].wait_for.silence_ms: only used with event: app_audio_end (this wait is for mark)"),
    ("wait_for timeout zero", "inbound:\n  - wait_for: {timeout_ms: 0}\n",
     "2: inbound[0].wait_for.timeout_ms: must be between 1 and 600000, got 0"),
    ("wait_for bad action", "inbound:\n  - wait_for: {on_timeout: retry}\n",
     "2: inbound[0].wait_for.on_timeout: expected one of: continue, hangup, fail; got 'retry'"),
    ("wait_for unknown field", "inbound:\n  - wait_for: {timeout: 5}\n",
     "2: inbound[0].wait_for.timeout: unknown field (expected one of: after_ms, digits, event, mark, on_timeout, "
     "silence_ms, timeout_ms)"),
    ("hangup cause", "inbound:\n  - hangup: {cause: angry}\n",
     "2: inbound[0].hangup.cause: expected one of: call_rejected, no_answer, normal_clearing, originator_cancel, "
     "timeout, unspecified, user_busy; got 'angry'"),
    ("hangup body null", "inbound:\n  - hangup:\n", "2: inbound[0].hangup: expected a mapping, got null"),
    ("steps after hangup", "inbound:\n  - silence: {ms: 10}\n  - hangup: {}\n  - silence: {ms: 10}\n",
     "4: inbound[2]: unreachable: the caller hangs up at inbound[1]"),
    ("repeat that always hangs up", "inbound:\n  - repeat: {times: 2, steps: [{hangup: {}}]}\n",
     "2: inbound[0].repeat.times: must be 1: the caller hangs up at inbound[0].repeat.steps[0] in the first pass, "
     "so the other passes are unreachable"),
    ("repeat hangs up, times on its own line", "inbound:\n  - silence: {ms: 1}\n  - repeat:\n      steps:\n"
     "        - dtmf: {digits: '1'}\n        - hangup: {}\n      times: 3\n",
     "7: inbound[1].repeat.times: must be 1: the caller hangs up at inbound[1].repeat.steps[1] in the first pass, "
     "so the other passes are unreachable"),
    ("repeat hangs up in a nested repeat", "inbound:\n  - repeat:\n      times: 2\n      steps:\n"
     "        - repeat: {times: 1, steps: [{hangup: {}}]}\n",
     "3: inbound[0].repeat.times: must be 1: the caller hangs up at inbound[0].repeat.steps[0].repeat.steps[0] in "
     "the first pass, so the other passes are unreachable"),
    ("step after a repeat that hangs up",
     "inbound:\n  - repeat: {times: 1, steps: [{silence: {ms: 1}}, {hangup: {}}]}\n  - dtmf: {digits: '1'}\n",
     "3: inbound[1]: unreachable: the caller hangs up at inbound[0].repeat.steps[1]"),
    ("step after a nested repeat that hangs up", "inbound:\n  - repeat:\n      times: 1\n      steps:\n"
     "        - repeat: {times: 1, steps: [{hangup: {}}]}\n        - silence: {ms: 1}\n",
     "6: inbound[0].repeat.steps[1]: unreachable: the caller hangs up at inbound[0].repeat.steps[0].repeat.steps[0]"),
    ("repeat without times", "inbound:\n  - repeat:\n      steps: [{silence: {ms: 1}}]\n",
     "3: inbound[0].repeat.times: missing required field"),
    ("repeat zero times", "inbound:\n  - repeat: {times: 0, steps: [{silence: {ms: 1}}]}\n",
     "2: inbound[0].repeat.times: must be between 1 and 10000, got 0"),
    ("repeat no steps", "inbound:\n  - repeat: {times: 2, steps: []}\n",
     "2: inbound[0].repeat.steps: expected at least 1 item, got 0"),
    ("error inside repeat", "inbound:\n  - repeat:\n      times: 2\n      steps:\n        - silence: {ms: 1}\n"
     "        - tone: {frequency: x, ms: 1}\n",
     "6: inbound[0].repeat.steps[1].tone.frequency: expected a number, got 'x'"),
    ("hangup inside repeat not last", "inbound:\n  - repeat:\n      times: 2\n      steps:\n        - hangup: {}\n"
     "        - silence: {ms: 1}\n",
     "6: inbound[0].repeat.steps[1]: unreachable: the caller hangs up at inbound[0].repeat.steps[0]"),
    ("wait_for on outbound", "inbound:\n  - silence: {ms: 1}\noutbound:\n  - wait_for: {}\n",
     f"4: outbound[0]: step 'wait_for' is only allowed in inbound (expected one of: {OUTBOUND_STEPS})"),
    ("hangup in an outbound repeat", "inbound:\n  - silence: {ms: 1}\noutbound:\n  - repeat:\n      times: 2\n"
     "      steps:\n        - hangup: {}\n",
     f"7: outbound[0].repeat.steps[0]: step 'hangup' is only allowed in inbound (expected one of: {OUTBOUND_STEPS})"),
    ("noise without level", "noise: {color: pink}\ninbound:\n  - silence: {ms: 1}\n",
     "1: noise.level: missing required field"),
    ("noise color", "noise: {level: -40, color: blue}\ninbound:\n  - silence: {ms: 1}\n",
     "1: noise.color: expected one of: white, pink, brown; got 'blue'"),
    ("gain too high", "gain: 20\ninbound:\n  - silence: {ms: 1}\n", "1: gain: must be between -60 and 12, got 20"),
    ("track too long", "# long\ninbound:\n  - repeat: {times: 7, steps: [{silence: {ms: 600000}}]}\n",
     "2: inbound: lasts 4200 s, counting each wait_for at its timeout; the limit is 3600 s"),
    ("waits count at their timeout", "inbound:\n  - repeat: {times: 400, steps: [{wait_for: {timeout_ms: 10000}}]}\n",
     "1: inbound: lasts 4000 s, counting each wait_for at its timeout; the limit is 3600 s"),
    ("too many steps", "inbound:\n  - repeat:\n      times: 10000\n      steps:\n        - repeat: {times: 11, "
     "steps: [{silence: {ms: 1}}]}\n",
     "1: inbound: 110000 steps once repeats are expanded; the limit is 100000"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_scenario_is_one_line_error(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, speech=tts.SpeechCache(None, fake_speech()))
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
    assert scenario.inbound.steps == (Silence(5), Tone((440.0, 480.0), 7, -12.0), Dtmf("#9", 100, 100, -10.0))
    assert scenario.inbound == Track(scenario.inbound.steps, Mix())
    assert list(scenario.inbound) == list(scenario.inbound.steps) and len(scenario.inbound) == 3
    assert scenario.inbound[1:] == scenario.inbound.steps[1:]
    assert scenario.outbound == Track() and not scenario.outbound
    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.inbound[0].ms = 6  # type: ignore[misc]


def test_schema_and_dataclasses_agree():
    """One list of step types and one set of defaults, whether a step comes from YAML or from code."""
    schema = json.loads(scenarios.schema_path().read_text())
    defs = schema["$defs"]
    assert sorted(defs["step"]["properties"]) == defs["step"]["propertyNames"]["enum"] == sorted(scenarios._STEP_TYPES)
    assert sorted(defs["outbound_step"]["properties"]) == defs["outbound_step"]["propertyNames"]["enum"]
    assert set(defs["outbound_step"]["properties"]) == set(scenarios._STEP_TYPES) - {"wait_for", "hangup"}
    classes = (
        (Tone, ["level"]),
        (Dtmf, ["ms", "gap_ms", "level"]),
        (Play, ["level"]),
        (Say, ["voice", "wpm", "pitch", "level"]),
        (WaitFor, ["event", "silence_ms", "after_ms", "timeout_ms", "on_timeout"]),
        (Hangup, ["cause"]),
    )
    for cls, fields in classes:
        for name in fields:
            assert defs[cls.kind]["properties"][name]["default"] == cls.__dataclass_fields__[name].default
    for name in ("color", "seed"):
        assert defs["noise"]["properties"][name]["default"] == Noise.__dataclass_fields__[name].default
    assert defs["hangup"]["properties"]["cause"]["enum"] == list(steps.HANGUP_CAUSES)
    assert defs["wait_for"]["properties"]["on_timeout"]["enum"] == list(steps.ON_TIMEOUT)
    assert sorted(defs["wait_for"]["properties"]["event"]["enum"]) == sorted(steps.WAIT_EVENTS)


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
    assert {"default", "tone", "silence", "dtmf", *SHIPPED} <= set(found)
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


def test_shipped_scenarios_load_without_espeak_ng():
    """Every say step of a shipped scenario is bundled in scenarios/audio/tts: no synthesis, no espeak-ng."""
    found = load_scenarios(default_scenario_dir(), speech=tts.SpeechCache(None, refuse))
    says = [step for scenario in found.values() for step in walk(scenario.inbound) if isinstance(step, Say)]
    assert len(says) >= 6 and {step.origin for step in says} == {"bundle"}


def test_shipped_speech_is_small_16k_mono_and_all_used():
    bundle = default_scenario_dir() / tts.BUNDLE_DIR
    files = sorted(bundle.glob("*"))
    for path in files:
        info = sf.info(path)
        assert (info.format, info.samplerate, info.channels, info.subtype) == ("FLAC", 16000, 1, "PCM_16"), path
    assert sum(path.stat().st_size for path in files) < 1_000_000  # new audio stays well under 2 MB
    used = set()
    for scenario in load_scenarios(default_scenario_dir()).values():
        for step in walk(scenario.inbound):
            if isinstance(step, Say):
                used.add(f"{tts.key(step.text, tts.Voice(step.voice, step.wpm, step.pitch))}.flac")
    assert sorted(path.name for path in files) == sorted(used)  # no orphans to ship


@pytest.mark.parametrize("rate", [8000, 16000])
def test_shipped_interactive_scenarios_against_a_mute_app(rate):
    found = load_scenarios(default_scenario_dir())
    ends = {}
    for name in SHIPPED:
        track = render_track(found[name].inbound, rate)
        ends[name] = track.end
        assert track.duration_ms == track.end.at_ms, name
    assert {name: end.reason for name, end in ends.items()} == dict.fromkeys(SHIPPED, "hangup")
    assert ends["soak-10min"].at_ms == 600_000  # ten minutes to the millisecond
    assert ends["silent-caller"].at_ms == 3 * 15_000 + 2000
    assert ends["hangup-mid-sentence"].at_ms == 5000 + 2600  # the sentence is cut 2.6 s in
    for name in ("voice-bot-question", "barge-in", "ivr-menu"):
        assert 20_000 < ends[name].at_ms < 60_000, name


def test_shipped_ivr_menu_keys_are_real_dtmf():
    track = render_track(load_scenarios(default_scenario_dir())["ivr-menu"].inbound, 8000)
    assert "".join(e.digit for e in track.dtmf) == "24219#1"
    for event in track.dtmf:
        start = event.at_ms * 8
        assert detect_dtmf(track.pcm[start : start + event.duration_ms * 8], 8000) == event.digit


def test_shipped_barge_in_and_silent_caller_use_their_options():
    found = load_scenarios(default_scenario_dir())
    first = found["barge-in"].inbound[0]
    assert isinstance(first, WaitFor) and (first.event, first.after_ms) == ("app_audio_start", 1500)
    silent = found["silent-caller"]
    assert silent.inbound.mix.noise == Noise(-60.0, "pink", 0)
    pcm = render_track(silent.inbound, 8000).pcm
    assert peak_dbfs_from_rms(pcm) == pytest.approx(-60, abs=1)  # line noise, not digital silence
    soak = found["soak-10min"].inbound
    assert sum(isinstance(s, WaitSegment) for s in compile_track(soak, 8000).segments) == 0


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
    assert len(blocks) >= 12
    speech = tts.SpeechCache(None, fake_speech())  # docs may say anything: no espeak-ng needed to check them
    kinds = set()
    for i, block in enumerate(blocks):
        if block.startswith("# calls.yaml"):  # the scenario map example: tests/e2e/test_scenario_docs.py runs it
            continue
        scenario = parse_scenario(block, f"docs/scenarios.md#example{i}", default_scenario_dir(), speech=speech)
        assert render_track(scenario.inbound, 8000).duration_ms > 0
        kinds |= {step.kind for step in walk(scenario.inbound)}
    assert kinds == set(scenarios._STEP_TYPES)  # every step type has a runnable example


def test_every_python_example_in_the_docs_runs(monkeypatch):
    root = default_scenario_dir().parent
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs" / "scenarios.md").read_text(), flags=re.DOTALL)
    assert blocks
    monkeypatch.chdir(root)  # the examples name scenario files relative to the repository
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/scenarios.md#python{i}", "exec"), {})


# --- say, play, wait_for, hangup, repeat, mix --------------------------------------------------------------------


def test_say_uses_the_speech_cache_and_renders_at_its_level(tmp_path):
    calls = []
    speech = tts.SpeechCache(tmp_path / "cache", fake_speech(calls))
    text = "inbound:\n  - say: {text: Hello there}\n  - say: {text: Hello there, voice: en-gb, wpm: 200, level: -20}\n"
    scenario = parse_scenario(text, "s.yaml", tmp_path, speech=speech)
    first, second = scenario.inbound
    assert isinstance(first, Say) and isinstance(second, Say)
    assert (first.text, first.voice, first.wpm, first.pitch, first.level, first.max_ms) == (
        "Hello there",
        "en-us",
        160,
        50,
        -3.0,
        None,
    )
    assert (second.voice, second.wpm, second.level) == ("en-gb", 200, -20.0)
    assert calls == [("Hello there", tts.Voice()), ("Hello there", tts.Voice("en-gb", 200))]
    for rate in (8000, 16000):
        pcm, events = first.render(rate)
        assert events == () and len(pcm) == pytest.approx(len(first.samples) * rate / 16000, abs=1)
        peak = 20 * math.log10(np.abs(pcm.astype(np.float64)).max() / 32768)
        assert peak == pytest.approx(-3, abs=0.3)
        assert peak_dbfs_from_rms(second.render(rate)[0][400:-400]) == pytest.approx(-20, abs=0.5)
    # The second load finds both in the user cache.
    again = parse_scenario(text, "s.yaml", tmp_path, speech=tts.SpeechCache(tmp_path / "cache", refuse))
    assert np.array_equal(again.inbound[0].samples, first.samples) and again.inbound[0].origin == "cache"


def test_say_max_ms_cuts_the_sentence(tmp_path):
    speech = tts.SpeechCache(None, fake_speech())
    text = "inbound:\n  - say: {text: a long sentence that goes on, max_ms: 300}\n  - hangup: {}\n"
    scenario = parse_scenario(text, "s.yaml", tmp_path, speech=speech)
    track = render_track(scenario.inbound, 8000)
    assert track.duration_ms == 300 and track.end == End("hangup", 300, cause="normal_clearing")
    assert scenario.inbound[0].duration_ms == 300


def test_say_without_espeak_ng_names_the_missing_package(tmp_path):
    speech = tts.SpeechCache(None, lambda text, voice: tts.espeak(text, voice, executable="no-such-espeak-ng"))
    with pytest.raises(ScenarioError) as info:
        parse_scenario("inbound:\n  - silence: {ms: 1}\n  - say: {text: Hello}\n", "x.yaml", tmp_path, speech=speech)
    assert str(info.value) == (
        "x.yaml:3: inbound[1].say.text: cannot synthesize speech: espeak-ng is not installed "
        "(install the espeak-ng package: apt-get install espeak-ng, or brew install espeak-ng)"
    )


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_say_with_an_unknown_voice_points_at_the_voice(tmp_path):
    speech = tts.SpeechCache(None)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(
            "inbound:\n  - say:\n      text: Hello\n      voice: xx-nope\n", "x.yaml", tmp_path, speech=speech
        )
    assert str(info.value) == "x.yaml:4: inbound[0].say.voice: espeak-ng has no voice 'xx-nope'"


def test_play_reads_mp3_and_max_ms_cuts_it(tmp_path):
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "clip.mp3", 0.5 * np.sin(2 * np.pi * 440 * t), 44100, format="MP3")
    scenario = parse_scenario(
        "inbound:\n  - play: {file: clip.mp3}\n  - play: {file: clip.mp3, max_ms: 250}\n", "p.yaml", tmp_path
    )
    whole, cut = scenario.inbound
    assert whole.sample_rate == 44100 and whole.duration_ms >= 1000
    assert cut.duration_ms == 250 and len(cut.render(8000)[0]) == 2000
    assert fft_peak_hz(whole.render(8000)[0], 8000) == pytest.approx(440, abs=2)


def test_wait_for_defaults_inference_and_origin(tmp_path):
    text = (
        "inbound:\n  - wait_for: {}\n  - wait_for: {mark: greeting-done, after_ms: 200}\n"
        "  - wait_for:\n      event: app_audio_start\n      timeout_ms: 3000\n      on_timeout: fail\n"
    )
    scenario = parse_scenario(text, "w.yaml", tmp_path)
    plain, mark, start = scenario.inbound
    assert plain == WaitFor("app_audio_end", None, 700, 0, 10_000, "continue")
    assert (mark.event, mark.mark, mark.after_ms) == ("mark", "greeting-done", 200)
    assert (start.event, start.timeout_ms, start.on_timeout) == ("app_audio_start", 3000, "fail")
    assert (plain.origin, start.origin) == ("w.yaml:2: inbound[0].wait_for", "w.yaml:5: inbound[2].wait_for")


def test_render_runs_each_wait_to_its_timeout_and_applies_on_timeout(tmp_path):
    text = (
        "inbound:\n  - tone: {frequency: 440, ms: 110}\n  - wait_for: {timeout_ms: 500}\n"
        "  - dtmf: {digits: '5', ms: 60}\n  - wait_for: {event: app_audio_start, timeout_ms: 1000, on_timeout: fail}\n"
        "  - silence: {ms: 5000}\n"
    )
    track = render_track(parse_scenario(text, "r.yaml", tmp_path).inbound, 16000)
    # 110 ms of tone padded to 120, 500 ms of wait, 60 ms of DTMF padded to 60, 1000 ms of wait, then it fails.
    assert track.duration_ms == 120 + 500 + 60 + 1000
    assert not track.pcm[int(0.11 * 16000) : 620 * 16].any()
    assert track.dtmf == (DtmfEvent(620, "5", 60),)
    assert track.end == End(
        "failed",
        1680,
        error="r.yaml:5: inbound[3].wait_for: timed out after 1000 ms waiting for the app to start playing audio",
    )


def test_hangups_that_always_happen_and_those_that_may_not(tmp_path):
    assert hangup_path(Hangup()) == ()
    assert hangup_path(Repeat(1, (Silence(1), Repeat(1, (Hangup(),))))) == ("repeat", "steps", 1, "repeat", "steps", 0)
    assert hangup_path(Repeat(3, (Silence(1),))) is None
    assert hangup_path(WaitFor(on_timeout="hangup")) is None  # only if the app stays quiet
    # A repeat may hang up in its only pass, and a wait that may hang up can repeat and be followed.
    text = (
        "inbound:\n  - repeat: {times: 3, steps: [{wait_for: {timeout_ms: 100, on_timeout: hangup}}]}\n"
        "  - silence: {ms: 20}\n  - repeat: {times: 1, steps: [{dtmf: {digits: '1'}}, {hangup: {cause: user_busy}}]}\n"
    )
    track = render_track(parse_scenario(text, "h.yaml", tmp_path).inbound, 8000)
    assert track.end == End("hangup", 100, cause="normal_clearing")


def test_repeat_hangup_gain_and_noise_parse(tmp_path):
    text = (
        "gain: -6\nnoise: {level: -45, color: brown, seed: 9}\ninbound:\n"
        "  - repeat: {times: 3, steps: [{tone: {frequency: 700, ms: 100}}, {silence: {ms: 100}}]}\n"
        "  - hangup: {cause: user_busy}\noutbound:\n  - repeat: {times: 2, steps: [{silence: {ms: 50}}]}\n"
    )
    scenario = parse_scenario(text, "m.yaml", tmp_path)
    assert scenario.inbound.mix == Mix(-6.0, Noise(-45.0, "brown", 9))
    assert scenario.outbound.mix == Mix()  # gain and noise are the caller's
    repeat, hangup = scenario.inbound
    assert repeat == Repeat(3, (Tone((700.0,), 100), Silence(100))) and hangup == Hangup("user_busy")
    track = render_track(scenario.inbound, 8000)
    assert track.duration_ms == 600 and track.end == End("hangup", 600, cause="user_busy")
    quiet = render_track(scenario.inbound, 8000, Mix())  # an explicit mix wins over the track's
    assert peak_dbfs_from_rms(quiet.pcm[:800]) == pytest.approx(-12, abs=0.3)
    assert peak_dbfs_from_rms(track.pcm[:800]) == pytest.approx(-18, abs=0.3)
    assert peak_dbfs_from_rms(track.pcm[800:1600]) == pytest.approx(-45, abs=1.5)  # the noise under a pause
    assert render_track(scenario.outbound, 8000).duration_ms == 100


def test_a_scenario_folder_adds_to_the_bundled_scenarios_and_wins_on_a_shared_name(tmp_path):
    from emulator.app import scenarios_of

    (tmp_path / "mine.yaml").write_text("inbound:\n  - silence: {ms: 100}\n")
    (tmp_path / "tone.yaml").write_text("description: my tone\ninbound:\n  - tone: {frequency: 500, ms: 100}\n")
    found = scenarios_of(tmp_path)
    assert {"default", "stay-on-line", "mine", "tone"} <= set(found)
    assert found["tone"].description == "my tone"
    assert set(scenarios_of(default_scenario_dir())) == {p.stem for p in default_scenario_dir().glob("*.yaml")}


def test_the_faults_page_scenario_loads_with_its_rules(tmp_path):
    """docs/faults.md's scenario with a faults: section is a valid scenario, and its rules are kept as written."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "faults.md").read_text()
    text = re.search(r"```yaml\n# scenarios/flaky-network.yaml\n(.*?)```", page, re.DOTALL)
    assert text is not None
    path = tmp_path / "flaky-network.yaml"
    path.write_text(text.group(1))
    scenario = load_scenario(path, speech=tts.SpeechCache(None, fake_speech()))
    assert scenario.faults == (
        {"target": "media", "kind": "loss", "probability": 0.05, "burst": 3},
        {"target": "webhooks", "kind": "duplicate", "event_type": "call.answered"},
    )
