"""CallAudio, the clips a call plays (speak, playback, send_dtmf), tick by tick."""

from __future__ import annotations

import numpy as np

from emulator.media.call_audio import CallAudio, Clip

FS = 160


def clip(key: str, frames: float, value: int = 1000, **kwargs) -> Clip:
    return Clip(key, "speak", np.full(int(frames * FS), value, dtype=np.int16), **kwargs)


def run(audio: CallAudio, ticks: int) -> list[tuple[int, str, str, str | None]]:
    seen = []
    for n in range(ticks):
        _pcm, events = audio.take()
        seen += [(n, e.what, e.clip.key, e.status) for e in events]
    return seen


def test_clips_queue_one_after_another_and_end_with_their_last_frame():
    audio = CallAudio(FS)
    audio.add(clip("a", 2))
    audio.add(clip("b", 1.5))
    assert run(audio, 6) == [
        (0, "started", "a", None),
        (1, "ended", "a", "completed"),
        (2, "started", "b", None),
        (3, "ended", "b", "completed"),
    ]
    assert not audio.is_pending


def test_an_overlay_plays_over_the_queue_and_the_caller_hears_both():
    audio = CallAudio(FS)
    audio.add(clip("a", 3, 1000))
    audio.add(clip("tones", 1, 500, overlay=True))
    pcm, _ = audio.take()
    assert pcm is not None and int(pcm[0]) == 1500


def test_loops_replay_the_audio_and_infinity_plays_until_stopped():
    audio = CallAudio(FS)
    audio.add(clip("twice", 1, loops=2))
    assert [e[1] for e in run(audio, 3)] == ["started", "ended"] and run(audio, 1) == []
    audio.add(clip("forever", 1, loops=None))
    assert run(audio, 50) == [(0, "started", "forever", None)]
    assert audio.stop("all") and not audio.is_pending


def test_stop_current_moves_on_and_stop_all_clears_the_queue():
    audio = CallAudio(FS)
    for key in "abc":
        audio.add(clip(key, 10))
    audio.take()
    assert [(e.clip.key, e.status) for e in audio.stop("current")] == [("a", "cancelled")]
    assert run(audio, 1) == [(0, "started", "b", None)]
    assert [e.clip.key for e in audio.stop("all", status="call_hangup")] == ["b", "c"]


def test_a_clip_being_rendered_holds_its_place_silently():
    audio = CallAudio(FS)
    pending = Clip("a", "speak", None)
    audio.add(pending)
    audio.add(clip("b", 1))
    assert audio.take() == (None, ()) and not audio.is_heard
    pending.pcm = np.full(FS, 7, dtype=np.int16)
    assert [e[2] for e in run(audio, 4)] == ["a", "a", "b", "b"]


def test_a_clip_for_the_opposite_leg_is_not_mixed_for_the_caller():
    audio = CallAudio(FS)
    audio.add(clip("a", 2, heard_by_caller=False))
    pcm, events = audio.take()
    assert pcm is None and events[0].what == "started" and not audio.is_heard
