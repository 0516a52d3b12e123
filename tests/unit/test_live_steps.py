"""The caller's live steps, tick by tick: the cursor plays them before going on with its paused script, the engine
after the script's end too, and the library renders each once, at the same position for every codec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emulator.media.engine import CallMedia
from emulator.media.library import MediaLibrary, build_stream_media
from emulator.scenarios.cursor import ScriptCursor
from emulator.scenarios.loader import parse_scenario
from emulator.scenarios.segments import AudioSegment, CompiledTrack, compile_track
from emulator.scenarios.steps import AudioStep, Dtmf, Say, Silence, Tone, WaitFor

RATE = 8000


def live(track: CompiledTrack, step: AudioStep) -> int:
    (segment,) = compile_track([step], track.sample_rate).segments
    assert isinstance(segment, AudioSegment)
    return track.add_live(segment)


def advance(cursor: ScriptCursor, ticks: int) -> list:
    return [cursor.advance() for _ in range(ticks)]


def positions(ticks) -> list[tuple[int | None, int]]:
    return [(tick.segment, tick.frame) for tick in ticks]


def digits(ticks, first: int = 0) -> list[tuple[int, str]]:
    return [(first + i, digit) for i, tick in enumerate(ticks) for digit in tick.dtmf]


def test_a_live_step_plays_from_the_next_tick_and_the_script_resumes_where_it_paused():
    track = compile_track((Tone((440.0,), 100), Dtmf("1", 100, 0)), RATE)  # one segment: 5 + 5 frames
    pause = live(track, Silence(60))
    assert pause == len(track.segments)  # live positions follow the script's segments
    cursor = ScriptCursor(track)
    before = advance(cursor, 2)
    assert cursor.play_live(pause, 2) == 2  # it starts at the next tick
    assert cursor.is_live and cursor.quiet_ticks() == 0
    after = advance(cursor, 12)
    assert positions(before + after) == [
        (0, 0),
        (0, 1),
        (pause, 0),
        (pause, 1),
        (pause, 2),
        *[(0, frame) for frame in range(2, 10)],  # the tone and the digit, 3 ticks later than scripted
        (None, 0),  # the end
    ]
    assert digits(before + after) == [(13, "1")]  # scripted at tick 10; the pause lasted 3
    assert after[-1].end is not None and after[-1].end.reason == "completed" and after[-1].end.at_ms == 13 * 20
    assert np.array_equal(track.frame(after[0]), np.zeros(160, np.int16))
    assert not cursor.is_live


def test_live_steps_queue_one_after_another_and_report_their_digits_like_the_scripts():
    track = compile_track((Silence(1000),), RATE)
    keys, pause = live(track, Dtmf("12")), live(track, Silence(40))  # 100 ms tones 100 ms apart: 300 ms
    cursor = ScriptCursor(track)
    advance(cursor, 3)
    assert (cursor.play_live(keys, 3), cursor.play_live(pause, 3)) == (3, 18)
    ticks = advance(cursor, 22)
    assert positions(ticks[:1] + ticks[14:18]) == [(keys, 0), (keys, 14), (pause, 0), (pause, 1), (0, 3)]
    # Each digit the tick after its tone: "1" ends at 100 ms, "2" at 300 ms, which is the pause's first tick.
    assert digits(ticks, first=3) == [(8, "1"), (18, "2")]
    assert cursor.play_live(keys, cursor.ticks) == cursor.ticks  # nothing queued: the next tick


def test_a_wait_is_paused_too_its_timeout_counted_without_the_live_step():
    track = compile_track((WaitFor(timeout_ms=100), Tone((440.0,), 40)), RATE)
    pause = live(track, Silence(60))
    cursor = ScriptCursor(track)
    ticks = advance(cursor, 2)
    cursor.play_live(pause, 2)
    ticks += advance(cursor, 8)
    assert positions(ticks) == [
        (None, 0),
        (None, 0),  # waiting (the idle loop is one frame of silence)
        (pause, 0),
        (pause, 1),
        (pause, 2),
        (None, 0),
        (None, 0),
        (None, 0),  # the wait's last 3 ticks of its 5
        (1, 0),
        (1, 1),  # the tone: scripted at tick 5, now at 8
    ]
    assert all(tick.waiting is not None for tick in ticks[5:8])


def test_a_live_hangup_ends_the_script_after_the_live_steps_before_it():
    track = compile_track((Dtmf("9", 100, 0), Silence(1000)), RATE)
    keys = live(track, Dtmf("5", 60, 0))
    cursor = ScriptCursor(track)
    ticks = advance(cursor, 2)  # the scripted 9 is half pressed
    assert cursor.play_live(keys, 2) == 2
    assert cursor.play_live(None, 2) == 5  # a hangup takes no time
    ticks += advance(cursor, 4)
    end = ticks[-1].end
    assert end is not None and (end.reason, end.cause, end.at_ms) == ("hangup", "normal_clearing", 100)
    assert digits(ticks) == [(5, "5")]  # the live key, with the end; the 9 was cut short, never reported
    assert cursor.advance().end is end


def test_live_speech_is_reported_as_said_half_way_and_once_said():
    track = compile_track((Silence(1000),), RATE)
    words = Say("two adults please", samples=np.full(8000, 0.3, np.float32), sample_rate=16000)  # 500 ms
    spoken = live(track, words)
    cursor = ScriptCursor(track)
    cursor.play_live(spoken, 0)
    said = [(n, said) for n, tick in enumerate(advance(cursor, 30)) for said in tick.said]
    assert said == [(13, ("two", False)), (25, ("two adults please", True))]


def engine(text: str) -> CallMedia:
    scenario = parse_scenario(text, "t.yaml", Path("."))
    return CallMedia(build_stream_media(scenario, "PCMU"), at_end=scenario.at_end)


def test_the_engine_plays_live_steps_after_the_script_has_ended_and_is_idle_again_after():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 40}\n")
    for _ in range(10):
        media.advance()
    assert media.is_idle and media.script_end is not None
    keys = live(media.media.script, Dtmf("7", 60, 0))  # 3 frames
    assert media.play_live(keys) == 10  # the call's tick, though its cursor stopped at the script's end
    assert not media.is_idle and media.quiet_ticks() == 0
    ticks = [media.advance() for _ in range(5)]
    assert [tick.inbound.segment if tick.inbound else None for tick in ticks] == [keys, keys, keys, None, None]
    assert [(tick.number, tick.dtmf) for tick in ticks if tick.dtmf] == [(13, ("7",))]
    assert all(tick.end is None for tick in ticks) and media.is_idle
    assert np.abs(media.inbound_frame(ticks[0])).max() > 1000  # the tone, at the call's rate


def test_a_live_hangup_after_the_scripts_end_ends_the_call():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 20}\n")
    media.advance()
    media.advance()
    assert media.play_live(None) == 2
    tick = media.advance()
    assert tick.end is not None and tick.end.reason == "hangup" and media.end is tick.end
    with pytest.raises(RuntimeError):
        media.play_live(None)


def test_the_library_renders_a_live_step_once_at_the_same_position_for_every_codec():
    scenario = parse_scenario("inbound:\n  - tone: {frequency: 440, ms: 100}\n", "t.yaml", Path("."))
    library = MediaLibrary({"t": scenario}, "t")
    pcmu = library.media("t", "PCMU")
    first = library.add_live("t", "PCMU", Dtmf("1"))
    second = library.add_live("t", "PCMU", Silence(100))
    assert (first, second) == (1, 2) and library.add_live("t", "PCMU", Dtmf("1")) == first  # the same step
    l16 = library.media("t", "L16")  # built after them: they are added to it in the same order
    for media, frame_samples in ((pcmu, 160), (l16, 320)):
        assert media.script.audio(second).pcm.shape == (5 * frame_samples,)
        assert len(media.segment_payloads[first]) == 5 and len(media.segment_payloads) == 3
    assert library.add_live("t", "L16", Tone((1000.0,), 40)) == 3
    assert len(pcmu.script.live) == len(l16.script.live) == 3


def test_what_the_app_plays_during_a_live_step_is_no_reply_to_the_scripts_next_wait():
    # The caller says 100 ms, then waits for the app's reply to end. A live step comes 40 ms in; the app plays
    # during it (it answers the live step), then is quiet: the script's wait must not take that for its reply.
    track = compile_track((Tone((440.0,), 100), WaitFor(event="app_audio_end", timeout_ms=2000)), RATE)
    pause = live(track, Silence(200))
    cursor = ScriptCursor(track)
    advance(cursor, 2)
    cursor.play_live(pause, 2)
    during = [cursor.advance(app_playing=n < 6) for n in range(10)]  # the app plays for 120 ms of the pause
    assert {tick.segment for tick in during} == {pause}
    resumed = [cursor.advance() for _ in range(50)]  # the tone's last 60 ms, then the wait, for 940 ms
    assert [tick.segment for tick in resumed[:3]] == [0, 0, 0]
    # Still waiting, well past the 700 ms of quiet that would end a reply the app had begun: none has come.
    assert all(tick.waiting is not None for tick in resumed[3:])


def test_distinct_live_audio_is_kept_up_to_a_budget_and_a_step_already_kept_costs_nothing(monkeypatch):
    from emulator.media import library as library_module

    monkeypatch.setattr(library_module, "LIVE_BUDGET_MS", 1000)
    scenario = parse_scenario("inbound:\n  - silence: {ms: 100}\n", "t.yaml", Path("."))
    library = MediaLibrary({"t": scenario}, "t")
    first = library.add_live("t", "PCMU", Silence(600))
    assert library.add_live("t", "PCMU", Silence(600)) == first  # the same step: kept once, no more budget
    with pytest.raises(library_module.LiveBudgetSpent, match="30 minutes|minutes of them at most"):
        library.add_live("t", "PCMU", Silence(500))
