"""PlayoutQueue: the audio an app sends back on a bidirectional stream, "played" 20 ms at a time.

Pure bookkeeping, driven by the stream's clock: every tick the stream takes one frame of audio off
the queue (``take``). Marks sit in the queue between audio chunks and are reported once the audio
before them has been played; ``clear`` drops what is queued and reports every pending mark, as
Telnyx does. Each chunk is kept twice: at the stream's rate (for the outbound track) and as the app
sent it (for the recording of what the app played, so PCM round trips stay byte-exact).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

PCM = NDArray[np.int16]


@dataclass(slots=True)
class _Chunk:
    pcm: PCM  # at the stream's rate
    original: PCM  # as the app sent it, at its own rate
    played: int = 0  # samples of ``pcm`` already played

    @property
    def remaining(self) -> int:
        return len(self.pcm) - self.played

    def played_original(self) -> PCM:
        """The part of ``original`` that corresponds to what has been played."""
        if self.played >= len(self.pcm):
            return self.original
        return self.original[: round(self.played * len(self.original) / len(self.pcm))]


@dataclass(slots=True)
class _Mark:
    name: str


@dataclass(slots=True)
class Tick:
    """What one tick of playout produced."""

    pcm: PCM | None  # one frame of app audio (zero-padded at the end of a chunk), None when idle
    marks: list[str] = field(default_factory=list)  # marks whose preceding audio has finished


@dataclass(slots=True)
class PlayoutQueue:
    frame_samples: int  # samples per 20 ms at the stream's rate
    _items: deque[_Chunk | _Mark] = field(default_factory=deque)
    # Totals, in samples of what the app sent (its own rate): accepted = played + dropped + queued.
    accepted_chunks: int = 0
    accepted_samples: int = 0
    dropped_samples: int = 0
    played: list[PCM] = field(default_factory=list)  # what was actually heard, in the app's format

    @property
    def is_playing(self) -> bool:
        return any(isinstance(item, _Chunk) for item in self._items)

    @property
    def queued_ms(self) -> float:
        samples = sum(item.remaining for item in self._items if isinstance(item, _Chunk))
        return samples * 20 / self.frame_samples

    def add_audio(self, pcm: PCM, original: PCM) -> None:
        self._items.append(_Chunk(pcm, original))
        self.accepted_chunks += 1
        self.accepted_samples += len(original)

    def add_mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once (to be echoed now) when nothing is queued before it."""
        if not self._items:
            return [name]
        self._items.append(_Mark(name))
        return []

    def clear(self) -> list[str]:
        """Drop all queued audio at once; returns every pending mark, in order."""
        marks: list[str] = []
        for item in self._items:
            if isinstance(item, _Mark):
                marks.append(item.name)
            else:
                kept = item.played_original()
                if item.played:
                    self.played.append(kept)
                self.dropped_samples += len(item.original) - len(kept)
        self._items.clear()
        return marks

    def take(self) -> Tick:
        """Play one frame: up to ``frame_samples`` of queued audio, and the marks it gets past."""
        tick = Tick(pcm=None)
        out: PCM | None = None
        filled = 0
        while self._items:
            item = self._items[0]
            if isinstance(item, _Mark):
                tick.marks.append(item.name)
                self._items.popleft()
                continue
            if filled == self.frame_samples:
                break
            if out is None:
                out = np.zeros(self.frame_samples, dtype=np.int16)
            n = min(self.frame_samples - filled, item.remaining)
            out[filled : filled + n] = item.pcm[item.played : item.played + n]
            item.played += n
            filled += n
            if item.remaining == 0:
                self.played.append(item.original)
                self._items.popleft()
        tick.pcm = out
        return tick

    def played_pcm(self) -> PCM:
        return np.concatenate(self.played) if self.played else np.zeros(0, dtype=np.int16)
