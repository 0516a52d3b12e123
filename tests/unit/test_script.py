"""Segments and the script cursor: compiled segments, the turn-taking state machine, and the cursor the
stream engine drives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emulator.scenarios import segments, synth
from emulator.scenarios.cursor import End, ScriptCursor, render, render_track
from emulator.scenarios.loader import default_scenario_dir, load_scenarios
from emulator.scenarios.segments import AudioSegment, HangupSegment, WaitSegment, compile_track
from emulator.scenarios.steps import (
    APP_AUDIO_END,
    APP_AUDIO_START,
    MARK,
    Dtmf,
    DtmfEvent,
    Hangup,
    Mix,
    Noise,
    Repeat,
    Silence,
    Tone,
    WaitFor,
)
from emulator.scenarios.turns import Decision, Turn, WaitState
from tests.unit.test_synth import detect_dtmf, peak_dbfs_from_rms

RATE = 8000
FS = 160  # samples per 20 ms frame at 8 kHz


def run(track, app_playing=lambda n: False, marks=lambda n: (), limit=100_000):
    """Drive a cursor to the end: (ticks, frames sent, end)."""
    cursor, ticks, frames = ScriptCursor(track), [], []
    for n in range(limit):
        tick = cursor.advance(app_playing(n), marks(n))
        ticks.append(tick)
        if tick.end is not None:
            return ticks, frames, tick.end
        frames.append(track.frame(tick))
    raise AssertionError("the script did not end")


def first_tick_of_segment(ticks, index):
    return next(i for i, t in enumerate(ticks) if t.segment == index)


# --- compiling ---------------------------------------------------------------------------------------------------


def test_adjacent_audio_merges_and_waits_cut_segments_on_frame_boundaries():
    steps = (
        Tone((440.0,), 130),
        Dtmf("12", 60, 40),
        WaitFor(timeout_ms=100),
        Silence(30),
        Hangup("user_busy"),
        Silence(500),  # after a hangup: never compiled
    )
    track = compile_track(steps, RATE)
    kinds = [type(s) for s in track.segments]
    assert kinds == [AudioSegment, WaitSegment, AudioSegment, HangupSegment]
    first, _, second, hangup = track.segments
    assert len(first.pcm) == 300 * RATE // 1000  # 130 + 60 + 40 + 60 = 290 ms, padded to 15 whole frames
    assert not first.pcm[290 * RATE // 1000 :].any()
    assert first.dtmf == (DtmfEvent(130, "1", 60), DtmfEvent(230, "2", 60))
    assert len(second.pcm) == 2 * FS  # 30 ms, padded to 2 whole frames (a hangup follows)
    assert hangup == HangupSegment("user_busy")
    assert track.frame_samples == FS and track.idle_frames == 1 and not track.idle.any()
    assert not first.pcm.flags.writeable and not track.idle.flags.writeable


def test_last_segment_keeps_its_exact_length_and_frame_pads_it():
    track = compile_track((Silence(10), Tone((1000.0,), 25)), RATE)
    (segment,) = track.segments
    assert len(segment.pcm) == 35 * 8
    assert track.frames_in(0) == 2
    ticks, frames, end = run(track)
    assert [t.frame for t in ticks[:2]] == [0, 1] and end == End("completed", 40)
    assert len(frames[1]) == FS and not frames[1][120:].any()


def test_repeat_is_expanded_and_each_step_rendered_once(monkeypatch):
    calls = []
    real = Tone.render

    def counting(self, rate):
        calls.append(self)
        return real(self, rate)

    monkeypatch.setattr(Tone, "render", counting)
    beep = Tone((600.0,), 40)
    steps = (Repeat(3, (beep, Silence(20), Repeat(2, (WaitFor(timeout_ms=20),)))),)
    track = compile_track(steps, RATE)
    assert [type(s).__name__ for s in track.segments] == ["AudioSegment", "WaitSegment", "WaitSegment"] * 3
    assert len(calls) == 1  # the same step object, rendered once and reused
    assert Repeat(3, (beep, Silence(20))).count() == 6 and Repeat(3, (beep,)).duration_ms == 120


def test_gain_scales_the_audio_and_zero_gain_is_bit_exact():
    tone = (Tone((1000.0,), 1000, -6.0),)
    plain = compile_track(tone, RATE).segments[0].pcm
    assert np.array_equal(plain, synth.tone(1000, 1000, -6, RATE))
    quieter = compile_track(tone, RATE, Mix(gain=-6.0)).segments[0].pcm
    assert peak_dbfs_from_rms(quieter[800:-800]) == pytest.approx(-12, abs=0.1)


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
def test_noise_plays_under_audio_and_waits_at_its_level(color):
    mix = Mix(noise=Noise(-40.0, color, seed=3))
    track = compile_track((Silence(2000), WaitFor(timeout_ms=3000), Silence(500)), RATE, mix)
    audio = track.segments[0].pcm
    assert peak_dbfs_from_rms(audio) == pytest.approx(-40, abs=1)
    assert peak_dbfs_from_rms(track.idle) == pytest.approx(-40, abs=1)
    assert track.idle_frames == segments.NOISE_LOOP_MS // 20
    rendered = render(track)
    assert rendered.duration_ms == 5500
    assert peak_dbfs_from_rms(rendered.pcm) == pytest.approx(-40, abs=1)
    # The same seed gives the same noise; another seed, other noise.
    assert np.array_equal(compile_track((Silence(100),), RATE, mix).segments[0].pcm, audio[:800])
    other = compile_track((Silence(100),), RATE, Mix(noise=Noise(-40.0, color, seed=4))).segments[0].pcm
    assert not np.array_equal(other, audio[:800])


def test_noise_loop_is_seamless():
    loop = synth.noise("pink", -20, 8000, 8000, seed=1)
    steps = np.abs(np.diff(loop))
    # Shaped in the frequency domain, the loop is periodic: end-to-start is a step like any other, not a click.
    assert abs(loop[0] - loop[-1]) <= np.percentile(steps, 99.9)


def test_compile_rejects_a_bad_rate():
    with pytest.raises(ValueError, match="sample_rate must be positive"):
        compile_track((Silence(10),), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "app_speech"}, "event must be one of"),
        ({"event": "mark"}, "a mark name is needed"),
        ({"mark": "x"}, "a mark name is needed"),
        ({"on_timeout": "explode"}, "on_timeout must be one of"),
        ({"timeout_ms": 0}, "timeout_ms > 0"),
    ],
)
def test_wait_for_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WaitFor(**kwargs)


# --- the pure state machine -------------------------------------------------------------------------------------


def test_turn_records_first_start_last_stop_and_first_echo_of_each_mark():
    turn = Turn()
    turn = turn.observe(0, False)
    assert turn == Turn()
    turn = turn.observe(20, True, ["a"])
    turn = turn.observe(40, False, ["a", "b"])
    turn = turn.observe(60, True)
    turn = turn.observe(80, False)
    turn = turn.observe(100, False)
    assert turn == Turn(started_ms=20, playing=False, stopped_ms=80, marks=(("a", 20), ("b", 40)))
    assert turn.mark_ms("b") == 40 and turn.mark_ms("c") is None
    assert Turn.begin(200, True) == Turn(started_ms=200, playing=True)


def feed_all(state, turns):
    decisions = []
    for now, turn in turns:
        state, decision = state.feed(turn, now)
        decisions.append(decision)
    return state, decisions


def test_app_audio_start_resumes_after_ms_later_even_if_the_app_stops_meanwhile():
    state = WaitState(WaitFor(APP_AUDIO_START, after_ms=60, timeout_ms=40), begun_ms=0)
    state, d = state.feed(Turn(), 0)
    assert d is Decision.WAIT
    state, d = state.feed(Turn(started_ms=20, playing=True), 20)
    assert d is Decision.WAIT and state.met_ms == 20
    state, d = state.feed(Turn(started_ms=20, playing=False, stopped_ms=40), 60)  # past the timeout: met already
    assert d is Decision.WAIT
    state, d = state.feed(Turn(started_ms=20, playing=False, stopped_ms=40), 80)
    assert d is Decision.RESUME


def test_app_audio_end_needs_audio_then_silence_ms_of_quiet():
    wait = WaitFor(APP_AUDIO_END, silence_ms=100, timeout_ms=10_000)
    state = WaitState(wait, begun_ms=0)
    state, d = state.feed(Turn(), 500)
    assert d is Decision.WAIT  # quiet, but the app never played: not its turn's end
    state, d = state.feed(Turn(started_ms=520, playing=True), 520)
    assert d is Decision.WAIT
    state, d = state.feed(Turn(started_ms=520, playing=False, stopped_ms=600), 680)
    assert d is Decision.WAIT  # 80 ms of quiet
    state, d = state.feed(Turn(started_ms=520, playing=False, stopped_ms=600), 700)
    assert d is Decision.RESUME and state.met_ms == 700


def test_timeout_counts_from_the_wait_start():
    state = WaitState(WaitFor(MARK, mark="m", timeout_ms=50), begun_ms=1000)
    _, decisions = feed_all(state, [(1000, Turn()), (1040, Turn()), (1060, Turn())])
    assert decisions == [Decision.WAIT, Decision.WAIT, Decision.TIMEOUT]
    _, decisions = feed_all(state, [(1060, Turn(marks=(("m", 1060),)))])
    assert decisions == [Decision.RESUME]  # met on the timeout tick: the app wins


# --- the cursor --------------------------------------------------------------------------------------------------

SPEECH = Tone((300.0,), 1000)  # stands in for a say step: 1 s, 50 frames
REPLY = Tone((500.0,), 200)


def test_barge_in_starts_speaking_n_ms_after_the_app_starts_playing():
    track = compile_track((SPEECH, WaitFor(APP_AUDIO_START, after_ms=300, timeout_ms=5000), REPLY), RATE)
    ticks, _, end = run(track, app_playing=lambda n: n >= 60)  # the app starts at 1200 ms, during the wait
    start = first_tick_of_segment(ticks, 2)
    assert start == 75  # 1200 + 300 ms: the caller talks over the app, which is still playing
    assert all(t.segment is None and t.waiting is not None for t in ticks[50:75])
    assert end == End("completed", (75 + 10) * 20)


def test_barge_in_counts_from_a_start_during_the_callers_own_audio():
    track = compile_track((SPEECH, WaitFor(APP_AUDIO_START, after_ms=300, timeout_ms=5000), REPLY), RATE)
    ticks, _, _ = run(track, app_playing=lambda n: n >= 10)  # the app started 200 ms into the caller's speech
    assert first_tick_of_segment(ticks, 2) == 50  # 500 ms was long past: no gap at all after the caller's audio


def test_app_audio_end_resumes_after_the_app_has_been_quiet_for_silence_ms():
    wait = WaitFor(APP_AUDIO_END, silence_ms=700, timeout_ms=20_000)
    track = compile_track((SPEECH, wait, REPLY), RATE)

    def playing(n):  # the reply plays from 1.5 s to 3 s, with a 200 ms dip (a TTS gap) at 2 s
        return 75 <= n < 150 and not 100 <= n < 110

    ticks, _, _ = run(track, app_playing=playing)
    assert first_tick_of_segment(ticks, 2) == 150 + 35  # quiet from 3000 ms; 700 ms later the caller answers


def test_app_audio_end_times_out_on_an_app_that_never_stops():
    wait = WaitFor(APP_AUDIO_END, timeout_ms=1000, on_timeout="fail", origin="x.yaml:3: inbound[1].wait_for")
    track = compile_track((SPEECH, wait, REPLY), RATE)
    ticks, _, end = run(track, app_playing=lambda n: True)
    message = "x.yaml:3: inbound[1].wait_for: timed out after 1000 ms waiting for the app to play audio and then "
    assert end == End("failed", 2000, error=message + "be quiet for 700 ms")
    assert len(ticks) == 101


def test_marks_from_the_callers_own_turn_count_and_earlier_turns_do_not():
    steps = (SPEECH, WaitFor(MARK, mark="done", timeout_ms=2000), REPLY, WaitFor(MARK, mark="done"))
    track = compile_track(steps, RATE)
    echoes = {20: ["done"], 90: ["other"], 120: ["done"]}
    ticks, _, end = run(track, marks=lambda n: echoes.get(n, ()))
    assert first_tick_of_segment(ticks, 2) == 50  # echoed at 400 ms, while the caller spoke
    assert end == End("completed", 120 * 20)  # the second wait needs a new echo: tick 120


@pytest.mark.parametrize(
    ("on_timeout", "end"),
    [
        ("continue", End("completed", (50 + 13 + 10) * 20)),
        ("hangup", End("hangup", (50 + 13) * 20, cause="normal_clearing")),
    ],
)
def test_timeout_actions(on_timeout, end):
    track = compile_track((SPEECH, WaitFor(timeout_ms=250, on_timeout=on_timeout), REPLY), RATE)
    ticks, frames, got = run(track)
    assert got == end  # 250 ms is 13 ticks: waits are whole frames
    assert sum(t.segment is None for t in ticks[:-1]) == 13


def test_hangup_ends_the_script_and_the_cursor_stays_ended():
    track = compile_track((SPEECH, Hangup("user_busy")), RATE)
    cursor = ScriptCursor(track)
    ticks = [cursor.advance() for _ in range(53)]
    assert ticks[49].segment == 0 and ticks[50].end == End("hangup", 1000, cause="user_busy")
    assert ticks[52].end == ticks[50].end and cursor.end == ticks[50].end and cursor.ticks == 53


def test_dtmf_is_reported_at_the_tick_after_its_tone_ends_even_across_a_wait():
    steps = (Silence(90), Dtmf("12", 60, 40), WaitFor(timeout_ms=100), Dtmf("3", 70), Hangup())
    track = compile_track(steps, RATE)
    ticks, _, end = run(track)
    reported = [(i, d) for i, t in enumerate(ticks) for d in t.dtmf]
    # "1": 90-150 ms -> tick 8; "2": 190-250 ms, the segment's last sample -> tick 13, the wait's first tick;
    # "3": the second segment starts at tick 18 and lasts 70 ms -> tick 22, the hangup tick.
    assert reported == [(8, "1"), (13, "2"), (22, "3")]
    assert ticks[13].segment is None and end.reason == "hangup"


def test_dtmf_ticks_match_the_rule_of_pre_rendered_streams():
    """Without waits the cursor reports each digit at ceil((at + duration) / 20), as media.py always has."""
    scenario = load_scenarios(default_scenario_dir())["dtmf"]
    track = compile_track(scenario.inbound, RATE)
    ticks, _, _ = run(track)
    reported = [(i, d) for i, t in enumerate(ticks) for d in t.dtmf]
    rendered = render_track(scenario.inbound, RATE)
    assert reported == [(math.ceil((e.at_ms + e.duration_ms) / 20), e.digit) for e in rendered.dtmf]


def test_idle_frames_are_the_noise_loop_while_waiting():
    track = compile_track((Silence(20), WaitFor(timeout_ms=200)), RATE, Mix(noise=Noise(-30.0)))
    ticks, frames, _ = run(track)
    assert ticks[1].segment is None and ticks[1].frame == 1
    assert np.array_equal(frames[1], track.idle[FS : 2 * FS])


@pytest.mark.parametrize("rate", [8000, 16000])
def test_render_is_what_the_cursor_sends_to_a_mute_app(rate):
    for name, scenario in load_scenarios(default_scenario_dir()).items():
        track = compile_track(scenario.inbound, rate)
        _, frames, end = run(track)
        rendered = render(track)
        sent = np.concatenate(frames)[: len(rendered.pcm)]
        assert np.array_equal(sent, rendered.pcm), name
        assert len(frames) == math.ceil(len(rendered.pcm) / track.frame_samples), name
        assert end == rendered.end, name


def test_render_reports_dtmf_at_absolute_times_and_detects_the_tones():
    steps = (WaitFor(timeout_ms=110), Dtmf("7", 80), WaitFor(timeout_ms=40), Dtmf("#", 80))
    rendered = render(compile_track(steps, RATE))
    assert rendered.dtmf == (DtmfEvent(120, "7", 80), DtmfEvent(120 + 80 + 40, "#", 80))
    for event in rendered.dtmf:
        start = event.at_ms * RATE // 1000
        assert detect_dtmf(rendered.pcm[start : start + 640], RATE) == event.digit
    assert rendered.end == End("completed", 320)
    assert rendered.timeouts == 2


def test_render_counts_only_the_waits_that_ran_to_their_timeout():
    waits = (WaitFor(timeout_ms=100), WaitFor(timeout_ms=100, on_timeout="fail"), WaitFor(timeout_ms=100))
    assert render(compile_track(waits, RATE)).timeouts == 2
    assert render(compile_track((Silence(20), Hangup(), *waits), RATE)).timeouts == 0
    assert render(compile_track((Silence(20),), RATE)).timeouts == 0
