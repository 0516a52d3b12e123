"""What the dashboard reads of a stream's recording (media/recordings.py): the peak of each 20 ms frame for the
live waveforms, and the caller's steps to mark on the waveform, fed tick by tick from the media engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.media.engine import CallMedia
from emulator.media.library import build_stream_media
from emulator.media.recordings import Recording
from emulator.scenarios.loader import parse_scenario

FULL_TONE = 0.5  # a tone step's peak: its level is -6 dBFS


def recorded(text: str, ticks: int | None = None) -> Recording:
    """The recording a stream would have made of the whole call (or its first ``ticks``)."""
    scenario = parse_scenario(text, "t.yaml", Path("."))
    stream_media = build_stream_media(scenario, "PCMU")
    media = CallMedia(stream_media, at_end=scenario.at_end)
    recording = Recording("s1", stream_media, stream_media.frame_samples)
    for n, tick in enumerate(media.ticks()):
        if tick.end is not None or (ticks is not None and n >= ticks):
            break
        recording.add_tick(tick)
    return recording


def test_levels_are_one_peak_per_frame_loud_where_the_caller_sounds_and_zero_where_it_is_quiet():
    recording = recorded("inbound:\n  - silence: {ms: 100}\n  - tone: {frequency: 440, ms: 100, level: -6}\n")
    levels = recording.levels("inbound", 0, recording.ticks)
    assert len(levels) == recording.ticks == 10
    assert levels[:5] == [0.0] * 5
    assert all(level == pytest.approx(FULL_TONE, abs=0.02) for level in levels[5:])
    # A slice is the same frames, and a range past what was sent is cut to it.
    assert recording.levels("inbound", 3, 7) == levels[3:7]
    assert recording.levels("inbound", 8, 500) == levels[8:]
    assert recording.levels("inbound", 20, 30) == []


def test_levels_of_the_outbound_track_follow_the_scenarios_outbound_script():
    text = (
        "at_end: stay\ninbound:\n  - silence: {ms: 200}\n"
        "outbound:\n  - silence: {ms: 60}\n  - tone: {frequency: 600, ms: 60, level: -6}\n"
    )
    recording = recorded(text, ticks=10)
    levels = recording.levels("outbound", 0, 10)
    assert levels[:3] == [0.0] * 3 and min(levels[3:6]) > 0.4 and levels[6:] == [0.0] * 4


def test_the_caller_steps_are_its_words_and_keys_where_they_begin_its_waits_and_the_end_of_its_script():
    text = (
        "inbound:\n"
        "  - tone: {frequency: 440, ms: 100}\n"
        "  - wait_for: {event: app_audio_end, timeout_ms: 60}\n"
        "  - dtmf: {digits: '12', ms: 100, gap_ms: 100}\n"
        "  - silence: {ms: 100}\n"
    )
    steps = recorded("at_end: stay\n" + text, ticks=40).caller_steps()
    assert steps == [
        (0, "sound"),
        (100, "waits for the app"),
        (160, "presses 1"),
        (360, "presses 2"),
        (560, "script over"),
    ]


def test_silence_alone_is_not_a_step():
    recording = recorded("at_end: stay\ninbound:\n  - silence: {ms: 100}\n", ticks=10)
    assert recording.caller_steps() == [(100, "script over")]


def test_an_inbound_only_stream_at_another_rate_still_records_what_the_caller_heard():
    """The app's audio mixed into the call (at the call's 8 kHz) lands in a 16 kHz stream's outbound recording,
    converted when it is read, though the stream never sent the outbound track."""
    import numpy as np

    from emulator.calls.models import AppAudioCounters
    from emulator.media.playout import PlayoutQueue
    from emulator.media.ticks import AppAudio

    scenario = parse_scenario("at_end: stay\ninbound:\n  - silence: {ms: 400}\n", "t.yaml", Path("."))
    call_media = build_stream_media(scenario, "PCMU")
    stream_media = build_stream_media(scenario, "G722")  # 16 kHz
    engine = CallMedia(call_media, at_end=scenario.at_end)
    source = AppAudio(PlayoutQueue(engine.frame_samples, AppAudioCounters()), True)
    engine.add_app_audio("s1", source)
    tone = (16000 * np.sin(2 * np.pi * 500 * np.arange(1600) / 8000)).astype(np.int16)  # 200 ms at 8 kHz
    source.playout.add_audio(tone, tone)
    recording = Recording("s1", stream_media, stream_media.frame_samples)
    recording.call_rate = call_media.sample_rate
    for _ in range(20):
        recording.add_tick(engine.advance())
    levels = recording.levels("outbound", 0, 20)
    assert min(levels[1:9]) > 0.3 and max(levels[12:]) == 0.0
    pcm, rate = recording.pcm("outbound")
    assert rate == 16000 and len(pcm) == 20 * 320
