"""telnyx-emulator scenario check|render: one line per file, exit status 2 on a bad file, audio you can hear."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from emulator import cli
from emulator.scenarios import tts
from emulator.scenarios.loader import default_scenario_dir
from tests.unit.test_synth import detect_dtmf
from tests.unit.test_tts import fake_speech


@pytest.fixture(autouse=True)
def fake_tts(monkeypatch, tmp_path):
    """Speech from a fake synthesizer into a private cache: no espeak-ng, nothing written to the home folder."""
    monkeypatch.setattr(tts.SpeechCache, "from_env", classmethod(lambda cls, env=None: cls(tmp_path, fake_speech())))


def test_check_prints_one_line_per_file_and_exits_0(capsys):
    assert cli.main(["scenario", "check", "tone", str(default_scenario_dir() / "ivr-menu.yaml")], environ={}) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{default_scenario_dir() / 'tone.yaml'}: ok: 1 inbound step, 2.0 s"
    assert out[1] == (
        f"{default_scenario_dir() / 'ivr-menu.yaml'}: ok: 8 inbound steps, 46.4 s if the app never answers "
        "(4 wait_for steps at the timeout), then the caller hangs up (normal_clearing)"
    )


@pytest.mark.parametrize(
    ("steps", "summary"),
    [
        ("  - tone: {frequency: 440, ms: 100}\n  - hangup: {cause: user_busy}\n",
         "2 inbound steps, 0.1 s, then the caller hangs up (user_busy)"),
        ("  - wait_for: {timeout_ms: 1000, on_timeout: hangup}\n  - say: {text: Hi}\n  - hangup: {cause: user_busy}\n",
         "3 inbound steps, 1.0 s if the app never answers (1 wait_for step at the timeout), "
         "then the caller hangs up (normal_clearing)"),
        # The script has a hangup, but a mute app makes it fail first: the summary says so, and counts only the
        # waits that ran (the third is never reached).
        ("  - wait_for: {timeout_ms: 4000}\n  - tone: {frequency: 440, ms: 100}\n"
         "  - wait_for: {timeout_ms: 12000, on_timeout: fail}\n  - wait_for: {timeout_ms: 500}\n  - hangup: {}\n",
         "5 inbound steps, 16.1 s if the app never answers (2 wait_for steps at the timeout), then the script fails: "
         "{path}:4: inbound[2].wait_for: timed out after 12000 ms waiting for the app to play audio and then be quiet "
         "for 700 ms"),
        ("  - wait_for: {timeout_ms: 100}\n  - silence: {ms: 100}\n",
         "2 inbound steps, 0.2 s if the app never answers (1 wait_for step at the timeout)"),
    ],
    ids=["hangup", "hangup at a timeout", "fails before its hangup", "runs out"],
)  # fmt: skip
def test_check_summary_tells_how_the_render_ends(tmp_path, capsys, steps, summary):
    path = tmp_path / "s.yaml"
    path.write_text(f"inbound:\n{steps}")
    assert cli.main(["scenario", "check", str(path)], environ={}) == 0
    assert capsys.readouterr().out == f"{path}: ok: {summary.format(path=path)}\n"


def test_check_reports_every_bad_file_and_exits_2(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("inbound:\n  - silence: {ms: 0}\n")
    (tmp_path / "b.yaml").write_text("inbound:\n  - silence: {ms: 5}\n")
    (tmp_path / "c.yml").write_text("inbound:\n  - sing: {}\n")
    assert cli.main(["scenario", "check", str(tmp_path)], environ={}) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{tmp_path / 'a.yaml'}:2: inbound[0].silence.ms: must be between 1 and 600000, got 0",
        f"{tmp_path / 'c.yml'}:2: inbound[0]: unknown step 'sing' (expected one of: dtmf, hangup, play, repeat, say, "
        "silence, tone, wait_for)",
    ]
    assert captured.out == f"{tmp_path / 'b.yaml'}: ok: 1 inbound step, 0.0 s\n"


def test_check_bundle_speech_writes_the_audio_beside_the_scenario(tmp_path, capsys):
    scenario = tmp_path / "mine" / "hello.yaml"
    scenario.parent.mkdir()
    scenario.write_text("inbound:\n  - say: {text: Hello}\n  - repeat: {times: 2, steps: [{say: {text: Bye}}]}\n")
    assert cli.main(["scenario", "check", "--bundle-speech", str(scenario)], environ={}) == 0
    assert capsys.readouterr().out.endswith("; bundled 2 new speech files\n")
    bundled = sorted(p.name for p in (tmp_path / "mine" / "audio" / "tts").iterdir())
    assert bundled == sorted(f"{tts.key(t, tts.Voice())}.flac" for t in ("Hello", "Bye"))
    assert cli.main(["scenario", "check", "--bundle-speech", str(scenario)], environ={}) == 0
    assert capsys.readouterr().out.endswith("; bundled 0 new speech files\n")


def test_render_writes_what_a_mute_app_hears(tmp_path, capsys):
    out = tmp_path / "ivr.wav"
    assert cli.main(["scenario", "render", "ivr-menu", "-o", str(out), "--rate", "8000"], environ={}) == 0
    pcm, rate = sf.read(out, dtype="int16")
    assert rate == 8000 and len(pcm) == 46_400 * 8
    assert detect_dtmf(pcm[10_000 * 8 : 10_100 * 8], 8000) == "2"  # after the first wait's 10 s timeout
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {out}: 46.40 s at 8000 Hz (inbound)"
    assert lines[1].startswith("inbound DTMF: 2 at 10.00 s, 4 at 20.10 s, ")
    assert lines[1].endswith("; at 46.40 s the caller hangs up (normal_clearing)")


def test_render_both_tracks_is_stereo(tmp_path):
    out = tmp_path / "dtmf.flac"
    assert cli.main(["scenario", "render", "dtmf", "-o", str(out), "--track", "both"], environ={}) == 0
    audio, rate = sf.read(out, dtype="int16")
    assert audio.shape == (3000 * 16, 2) and rate == 16000  # the outbound track is the longer: 3 s
    assert np.abs(audio[:, 1]).max() > 1000 and not audio[:16000, 0].any()  # ringback right, caller's pause left


def test_render_errors(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("inbound: []\n")
    assert cli.main(["scenario", "render", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "x.wav")], environ={}) == 2
    assert (
        capsys.readouterr().err
        == f"telnyx-emulator: error: {tmp_path / 'bad.yaml'}:1: inbound: expected at least 1 item, got 0\n"
    )
    assert cli.main(["scenario", "render", "tone", "-o", str(tmp_path / "x.wav"), "--rate", "0"], environ={}) == 2
    assert "--rate must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["scenario", "render", "tone"], environ={})
    assert info.value.code == 2


@pytest.mark.parametrize("files", [0, 1, 2])
def test_render_a_folder_is_a_one_line_usage_error(tmp_path, capsys, files):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(files):
        (folder / f"s{i}.yaml").write_text("inbound:\n  - silence: {ms: 10}\n")
    out = tmp_path / "x.wav"
    assert cli.main(["scenario", "render", str(folder), "-o", str(out)], environ={}) == 2
    captured = capsys.readouterr()
    assert captured.err == f"telnyx-emulator: error: render takes one scenario, and {folder} is a folder\n"
    assert captured.out == "" and not out.exists()


def test_names_find_yml_files_in_the_scenario_dir(tmp_path, capsys):
    (tmp_path / "short.yml").write_text("inbound:\n  - silence: {ms: 100}\n")
    out = tmp_path / "x.wav"
    assert cli.main(["scenario", "render", "short", "--scenario-dir", str(tmp_path), "-o", str(out)], environ={}) == 0
    assert sf.info(out).duration == pytest.approx(0.1)
    assert cli.main(["scenario", "check", "short", "--scenario-dir", str(tmp_path)], environ={}) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{tmp_path / 'short.yml'}: ok: 1 inbound step, 0.1 s"


def test_list_names_every_scenario_of_the_folder_with_its_length_and_description(tmp_path, capsys):
    assert cli.main(["scenario", "list"], environ={}) == 0
    lines = capsys.readouterr().out.splitlines()
    shipped = sorted(p.stem for p in default_scenario_dir().glob("*.yaml"))
    assert [line.split()[0] for line in lines] == shipped
    assert any(line.startswith("tone") and "2.0 s" in line and "1000 Hz" in line for line in lines)
    (tmp_path / "mine.yaml").write_text("description: Two seconds of quiet.\ninbound:\n  - silence: {ms: 2000}\n")
    assert cli.main(["scenario", "list", "--scenario-dir", str(tmp_path)], environ={}) == 0
    assert capsys.readouterr().out == "mine  1 inbound step, 2.0 s  Two seconds of quiet.\n"
    assert cli.main(["scenario", "list", "--scenario-dir", str(tmp_path / "none")], environ={}) == 2
