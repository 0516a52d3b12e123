from __future__ import annotations

import numpy as np

from emulator.calls.models import AppAudioCounters
from emulator.media.playout import PlayoutQueue

FS = 160


def pcm(n: int, value: int = 1) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


def test_idle_queue_plays_nothing_and_echoes_a_mark_at_once():
    queue = PlayoutQueue(FS)
    assert queue.take().pcm is None and not queue.is_playing
    assert queue.add_mark("now") == ["now"]


def test_audio_plays_one_frame_per_take_and_the_mark_after_it_comes_with_its_last_frame():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(400, 7), pcm(400, 7))
    assert queue.add_mark("done") == []
    first, second, third = queue.take(), queue.take(), queue.take()
    assert (first.marks, second.marks, third.marks) == ([], [], ["done"])
    assert third.pcm is not None and list(third.pcm[:80]) == [7] * 80 and list(third.pcm[80:]) == [0] * 80
    assert queue.take().pcm is None
    counters = queue.counters
    assert (counters.accepted_chunks, counters.accepted_samples) == (1, 400)
    assert (counters.played_chunks, counters.played_samples, len(queue.played_pcm())) == (1, 400, 400)


def test_chunks_play_back_to_back_within_one_frame():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(100, 1), pcm(100, 1))
    queue.add_audio(pcm(100, 2), pcm(100, 2))
    frame = queue.take().pcm
    assert frame is not None and list(frame) == [1] * 100 + [2] * 60
    assert (queue.counters.played_chunks, queue.counters.queued_chunks, queue.counters.queued_samples) == (1, 1, 40)


def test_clear_drops_the_rest_echoes_pending_marks_and_accounts_for_every_sample():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(480, 3), pcm(960, 3))  # app sent at twice the stream's rate
    queue.add_mark("a")
    queue.add_audio(pcm(320), pcm(640))
    queue.add_mark("b")
    queue.take()
    assert queue.clear() == ["a", "b"]
    assert not queue.is_playing and queue.take().pcm is None
    played = len(queue.played_pcm())
    assert played == queue.counters.played_samples == 320  # 160 stream samples of 480: a third of 960
    assert_accounted(queue.counters, accepted=1600, played=320)
    assert (queue.counters.dropped_chunks, queue.counters.unplayed_chunks) == (2, 0)


def assert_accounted(counters: AppAudioCounters, *, accepted: int, played: int) -> None:
    """Every accepted sample was played or dropped, and nothing is left queued."""
    assert (counters.accepted_samples, counters.played_samples) == (accepted, played)
    assert counters.dropped_samples == accepted - played
    assert counters.queued_samples == counters.queued_chunks == 0
    assert counters.accepted_chunks == counters.played_chunks + counters.dropped_chunks


def test_the_counters_are_exact_while_a_chunk_plays():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(480), pcm(1440))  # the app's rate is three times the stream's
    queue.take()
    counters = queue.counters
    assert (counters.played_samples, counters.queued_samples, counters.queued_chunks) == (480, 960, 1)


def test_finish_records_the_played_part_of_the_chunk_cut_short_and_counts_the_rest_as_unplayed():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(800, 5), pcm(800, 5))
    queue.add_mark("after-first")
    queue.add_audio(pcm(320, 6), pcm(320, 6))
    queue.add_mark("after-second")
    for _ in range(2):
        queue.take()
    assert queue.finish() == ["after-first", "after-second"]  # never echoed: their audio never finished
    assert list(queue.played_pcm()) == [5] * 320
    assert_accounted(queue.counters, accepted=1120, played=320)
    counters = queue.counters
    assert (counters.unplayed_chunks, counters.unplayed_samples, counters.played_chunks) == (2, 800, 0)
    assert queue.finish() == [] and counters.unplayed_samples == 800  # idempotent


def test_finish_after_clear_and_completed_chunks_keeps_every_total():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(160, 1), pcm(160, 1))
    queue.take()  # played to its end
    queue.add_audio(pcm(480, 2), pcm(480, 2))
    queue.take()
    queue.clear()  # 160 played, 320 cleared
    queue.add_audio(pcm(480, 3), pcm(480, 3))
    queue.take()
    queue.finish()  # 160 played, 320 unplayed
    assert list(queue.played_pcm()) == [1] * 160 + [2] * 160 + [3] * 160
    assert_accounted(queue.counters, accepted=1120, played=480)
    counters = queue.counters
    assert (counters.played_chunks, counters.dropped_chunks, counters.unplayed_chunks) == (1, 2, 1)
    assert (counters.dropped_samples, counters.unplayed_samples) == (640, 320)
