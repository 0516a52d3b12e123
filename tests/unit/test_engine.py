"""CallMedia, the per-call media engine, tick by tick: no clock, no sockets — every tick is one advance()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emulator.calls.models import AppAudioCounters
from emulator.media.call_audio import Clip
from emulator.media.engine import TAIL_TICKS, CallMedia
from emulator.media.library import build_stream_media
from emulator.media.playout import PlayoutQueue
from emulator.media.ticks import AppAudio
from emulator.scenarios.loader import parse_scenario


def engine(text: str, codec: str = "PCMU") -> CallMedia:
    scenario = parse_scenario(text, "t.yaml", Path("."))
    return CallMedia(build_stream_media(scenario, codec), at_end=scenario.at_end)


def app_source(media: CallMedia, *, heard: bool = True) -> AppAudio:
    source = AppAudio(PlayoutQueue(media.frame_samples, AppAudioCounters()), heard)
    media.add_app_audio("s1", source)
    return source


def test_the_script_runs_from_the_first_tick_and_the_caller_hangs_up_when_it_runs_out():
    media = engine("inbound:\n  - tone: {frequency: 440, ms: 100}\n")
    ticks = list(media.ticks())
    assert [t.number for t in ticks] == list(range(6))
    assert [t.inbound.frame for t in ticks[:5]] == [0, 1, 2, 3, 4]
    assert ticks[-1].end is not None and ticks[-1].end.reason == "completed"
    assert all(t.end is None for t in ticks[:-1])


def test_a_hangup_step_ends_the_call_with_its_cause_and_no_media_in_that_tick():
    media = engine("inbound:\n  - silence: {ms: 40}\n  - hangup: {cause: user_busy}\n")
    ticks = list(media.ticks())
    assert len(ticks) == 3 and ticks[-1].end.reason == "hangup" and ticks[-1].end.cause == "user_busy"
    assert ticks[-1].inbound is None


def test_dtmf_is_reported_once_per_digit_when_its_tone_has_finished():
    media = engine("inbound:\n  - dtmf: {digits: '12', ms: 100, gap_ms: 100}\n  - silence: {ms: 200}\n")
    digits = [(t.number, d) for t in media.ticks() for d in t.dtmf]
    assert digits == [(5, "1"), (15, "2")]


def test_at_end_stay_keeps_the_caller_on_the_line_silent():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 40}\n")
    ticks = [media.advance() for _ in range(200)]
    assert all(t.end is None for t in ticks) and ticks[-1].inbound is None
    assert media.is_idle


def test_app_audio_heard_by_the_caller_is_mixed_into_the_outbound_frame():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 1000}\noutbound:\n  - tone: {frequency: 400, ms: 1000}\n")
    source = app_source(media)
    pcm = np.full(480, 1000, dtype=np.int16)  # three frames
    source.playout.add_audio(pcm, pcm)
    ticks = [media.advance() for _ in range(5)]
    assert all(t.mixed is not None for t in ticks[:3]) and ticks[3].mixed is None
    fs = media.frame_samples
    expected = media.media.outbound_pcm[:fs].astype(np.int32) + 1000
    assert np.array_equal(ticks[0].mixed, np.clip(expected, -32768, 32767))


def test_app_audio_for_the_apps_own_leg_is_not_mixed_but_still_counts_as_the_app_playing():
    media = engine("inbound:\n  - wait_for: {event: app_audio_start, timeout_ms: 1000}\n  - silence: {ms: 20}\n")
    source = app_source(media, heard=False)
    pcm = np.full(160, 1000, dtype=np.int16)
    source.playout.add_audio(pcm, pcm)
    tick = media.advance()
    assert tick.mixed is None and tick.inbound.segment == 1  # the wait resumed at once: the app plays


def test_marks_are_echoed_the_tick_after_their_audio_and_reach_the_script():
    text = "inbound:\n  - wait_for: {event: mark, mark: done, timeout_ms: 2000}\n  - silence: {ms: 20}\n"
    media = engine(text)
    source = app_source(media)
    pcm = np.full(320, 1000, dtype=np.int16)  # two frames, then the mark
    source.playout.add_audio(pcm, pcm)
    source.playout.add_mark("done")
    ticks = list(media.ticks())
    assert [(t.number, t.marks) for t in ticks if t.marks] == [(2, {"s1": ["done"]})]
    assert ticks[2].inbound.segment == 1  # the wait for the mark resumed at its echo


def test_the_caller_waits_for_the_apps_reply_to_finish_before_hanging_up():
    media = engine("inbound:\n  - silence: {ms: 20}\n")
    source = app_source(media)
    pcm = np.full(1600, 1000, dtype=np.int16)  # ten frames
    source.playout.add_audio(pcm, pcm)
    ticks = list(media.ticks())
    assert ticks[-1].end.reason == "completed" and len(ticks) == 11


def test_the_tail_is_bounded():
    media = engine("inbound:\n  - silence: {ms: 20}\n")
    source = app_source(media)
    pcm = np.full(160 * (TAIL_TICKS + 100), 1000, dtype=np.int16)
    source.playout.add_audio(pcm, pcm)
    ticks = list(media.ticks())
    assert len(ticks) == TAIL_TICKS + 2 and source.playout.counters.unplayed_chunks == 1


def test_a_removed_source_is_no_longer_mixed():
    media = engine("at_end: stay\ninbound:\n  - silence: {ms: 20}\n")
    source = app_source(media)
    pcm = np.full(1600, 1000, dtype=np.int16)
    source.playout.add_audio(pcm, pcm)
    assert media.advance().mixed is not None
    media.remove_app_audio("s1")
    assert media.advance().mixed is None


def test_advancing_an_ended_call_is_an_error():
    media = engine("inbound:\n  - hangup: {}\n")
    assert list(media.ticks())[-1].end is not None
    with pytest.raises(RuntimeError):
        media.advance()


@pytest.mark.parametrize("codec", ["PCMU", "G722", "L16"])
def test_positions_are_the_same_at_every_codecs_rate(codec):
    text = "inbound:\n  - tone: {frequency: 440, ms: 130}\n  - wait_for: {event: mark, mark: x, timeout_ms: 60}\n"
    reference = [(t.inbound.segment, t.inbound.frame) if t.inbound else None for t in engine(text).ticks()]
    assert [(t.inbound.segment, t.inbound.frame) if t.inbound else None for t in engine(text, codec).ticks()] == (
        reference
    )


DTMF_SCRIPT = (
    "inbound:\n  - silence: {ms: 300}\n  - dtmf: {digits: '12#', ms: 80, gap_ms: 60}\n  - silence: {ms: 500}\n"
)
SKIPPABLE = [
    DTMF_SCRIPT,
    "inbound:\n  - tone: {frequency: 440, ms: 210}\n  - wait_for: {event: app_audio_end, timeout_ms: 450}\n"
    "  - dtmf: {digits: '9'}\n  - wait_for: {event: mark, mark: m, timeout_ms: 100, on_timeout: hangup}\n",
    "inbound:\n  - silence: {ms: 100}\n  - hangup: {cause: user_busy}\n",
    "inbound:\n  - silence: {ms: 100}\noutbound:\n  - tone: {frequency: 400, ms: 700}\n",
    "inbound:\n  - wait_for: {event: app_audio_start, timeout_ms: 300, on_timeout: fail}\n",
]


@pytest.mark.parametrize("text", SKIPPABLE)
def test_skipping_quiet_ticks_gives_the_same_digits_and_end_at_the_same_ticks(text):
    stepped = engine(text)
    events = [(t.number, t.dtmf, t.end) for t in stepped.ticks() if t.dtmf or t.end]
    skipping, seen, skipped = engine(text), [], 0
    while skipping.end is None:
        quiet = skipping.quiet_ticks()
        if quiet:
            skipping.skip(quiet)
            skipped += quiet
            continue
        tick = skipping.advance()
        if tick.dtmf or tick.end:
            seen.append((tick.number, tick.dtmf, tick.end))
    assert seen == events and skipped > 0
    assert skipping.index == stepped.index


def test_nothing_is_skipped_while_a_stream_adds_app_audio_but_ticks_that_passed_before_it_are():
    media = engine(DTMF_SCRIPT)
    media.advance()
    quiet = media.quiet_ticks()
    assert quiet > 0
    app_source(media)  # a stream attached while the runner slept through those ticks
    assert media.quiet_ticks() == 0
    media.skip(quiet - 1)  # the ticks before it came were quiet all the same
    with pytest.raises(ValueError):
        media.skip(2)


def test_the_callers_waits_hear_the_apps_playback_end_and_its_tones():
    media = engine(
        "inbound:\n  - wait_for: {event: playback_end, timeout_ms: 5000, on_timeout: fail}\n"
        "  - wait_for: {digits: '45', timeout_ms: 5000, on_timeout: fail}\n  - dtmf: {digits: '1', ms: 40}\n"
    )
    media.advance()
    playback = Clip("playback-1", "playback", np.full(400, 1000, dtype=np.int16))  # 50 ms: 3 ticks
    media.call_audio.add(playback)
    ticks = [media.advance() for _ in range(4)]
    # It plays in these ticks' mixes and ends in the third; the caller hears that at the next tick.
    assert [t.inbound.waiting.event for t in ticks] == ["playback_end"] * 3 + ["dtmf"]
    for digits in ("3", "45"):
        tones = Clip(f"dtmf-{digits}", "dtmf", np.full(160, 1000, dtype=np.int16), details={"digits": digits})
        media.call_audio.add(tones)
        media.advance()
    rest = list(media.ticks())
    assert [d for t in rest for d in t.dtmf] == ["1"] and rest[-1].end.reason == "completed"
