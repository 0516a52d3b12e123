"""Two engines joined (media/bridge.py), tick by tick: each caller's voice reaches the other's outbound audio one
tick later, silence does not cross, and a leg that stops hearing drops what was queued."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emulator.media.bridge import connect, disconnect, leg_key
from emulator.media.engine import CROSSING_BACKLOG, CallMedia
from emulator.media.library import build_stream_media
from emulator.scenarios.loader import parse_scenario


def engine(text: str) -> CallMedia:
    scenario = parse_scenario(text, "t.yaml", Path("."))
    return CallMedia(build_stream_media(scenario, "PCMU"), at_end=scenario.at_end)


def joined(a: CallMedia, b: CallMedia) -> None:
    connect(a, b, speaker_key=leg_key("A"), listener_key=leg_key("B"))
    connect(b, a, speaker_key=leg_key("B"), listener_key=leg_key("A"))


def peak_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


def test_each_callers_voice_is_the_other_legs_outbound_audio_one_tick_later():
    a = engine("at_end: stay\ninbound:\n  - tone: {frequency: 500, ms: 200}\n  - silence: {ms: 400}\n")
    b = engine("at_end: stay\ninbound:\n  - silence: {ms: 200}\n  - tone: {frequency: 1500, ms: 200}\n")
    joined(a, b)
    heard_by_b: list[np.ndarray] = []
    heard_by_a: list[np.ndarray] = []
    for _ in range(30):  # a ticks first each period, as one runner wakes before the other
        heard_by_a.append(a.outbound_frame(a.advance()))
        heard_by_b.append(b.outbound_frame(b.advance()))
    by_b, by_a = np.concatenate(heard_by_b), np.concatenate(heard_by_a)
    # a's tone (ticks 0-9) is heard by b in the same period, b's (ticks 10-19) by a a period later.
    assert peak_hz(by_b[: 10 * 160]) == 500 and np.abs(by_b[10 * 160 :]).max() == 0
    assert np.abs(by_a[: 11 * 160]).max() == 0 and peak_hz(by_a[11 * 160 : 21 * 160]) == 1500
    assert np.abs(by_a[21 * 160 :]).max() == 0  # silence does not cross: the queue runs dry


def test_the_other_leg_talking_is_the_app_talking_for_the_callers_turn_taking():
    # b's caller waits for whoever talks to it to finish, then answers; a's caller talks first.
    a = engine("at_end: stay\ninbound:\n  - tone: {frequency: 500, ms: 200}\n")
    b = engine(
        "at_end: stay\ninbound:\n  - wait_for: {event: app_audio_end, silence_ms: 100, timeout_ms: 5000}\n"
        "  - tone: {frequency: 900, ms: 100}\n"
    )
    joined(a, b)
    answered_at = None
    for n in range(60):
        a.advance()
        tick = b.advance()
        if answered_at is None and tick.inbound is not None and tick.inbound.segment is not None:
            answered_at = n
    assert answered_at is not None and 10 + 5 <= answered_at <= 10 + 5 + 2  # a's 10 frames, then 100 ms quiet


def test_a_leg_that_stalls_holds_at_most_the_backlog_and_disconnect_drops_it():
    a = engine("at_end: stay\ninbound:\n  - tone: {frequency: 500, ms: 2000}\n")
    b = engine("at_end: stay\ninbound:\n  - silence: {ms: 2000}\n")
    joined(a, b)
    for _ in range(100):  # b never ticks
        a.advance()
    source = b.sources[leg_key("A")]
    assert source.playout.counters.queued_chunks == CROSSING_BACKLOG
    assert a.is_joined and b.is_joined and not b.is_idle
    disconnect(a, b, speaker_key=leg_key("A"), listener_key=leg_key("B"))
    disconnect(b, a, speaker_key=leg_key("B"), listener_key=leg_key("A"))
    assert not a.is_joined and not b.is_joined and leg_key("A") not in b.sources
    assert source.playout.counters.queued_chunks == 0 and source.playout.played == []
