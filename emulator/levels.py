"""What counts as a voice in a 20 ms frame: one rule for the whole emulator (pure).

A frame is *voiced* when its mean square is over -40 dBFS: over a scenario's background noise (-50 dBFS by
default) and under any speech or tone. A bridge carries only voiced frames to the other leg
(``media/bridge.py``), and the conversation metrics count voiced ticks (``media/conversation.py``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

VOICE_DBFS = -40
VOICE_ENERGY = (32768 * 10 ** (VOICE_DBFS / 20)) ** 2  # the mean square of a frame at VOICE_DBFS


def is_voiced(frame: NDArray[np.int16]) -> bool:
    return float(np.dot(frame, frame.astype(np.float64))) >= VOICE_ENERGY * len(frame)


def voiced_frames(pcm: NDArray[np.int16], frame_samples: int) -> NDArray[np.bool_]:
    """Whether each 20 ms frame of ``pcm`` is voiced (the last one zero-padded), computed at once."""
    frames = -(-len(pcm) // frame_samples)
    padded = np.zeros(frames * frame_samples, dtype=np.float64)
    padded[: len(pcm)] = pcm
    rows = padded.reshape(frames, frame_samples)
    energy = np.einsum("ij,ij->i", rows, rows)  # each frame's sum of squares
    return np.asarray(energy >= VOICE_ENERGY * frame_samples)
