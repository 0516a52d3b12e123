from __future__ import annotations

import numpy as np

from emulator.playout import PlayoutQueue

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
    assert queue.accepted_chunks == 1 and queue.accepted_samples == 400 and len(queue.played_pcm()) == 400


def test_chunks_play_back_to_back_within_one_frame():
    queue = PlayoutQueue(FS)
    queue.add_audio(pcm(100, 1), pcm(100, 1))
    queue.add_audio(pcm(100, 2), pcm(100, 2))
    frame = queue.take().pcm
    assert frame is not None and list(frame) == [1] * 100 + [2] * 60
    assert queue.queued_ms == 40 * 20 / FS


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
    assert played == 320  # 160 stream samples of 480 = a third of the 960 original
    assert queue.accepted_samples == played + queue.dropped_samples == 1600
