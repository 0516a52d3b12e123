"""PlayoutQueue: the audio an app sends back on a bidirectional stream, "played" 20 ms at a time.

Pure bookkeeping, driven by the stream's clock: every tick the stream takes one frame of audio off
the queue (``take``). Marks sit in the queue between audio chunks and are reported once the audio
before them has been played; ``clear`` drops what is queued and reports every pending mark, as
Telnyx does. Each chunk is kept twice: at the call's rate (for the call's outbound mix) and as the app
sent it (for the recording of what the app played, so PCM round trips stay byte-exact).

Every accepted sample ends up played or dropped (``AppAudioCounters``): ``take`` counts what it plays
as it plays it, and ``clear`` and ``finish`` (the stream ended) record the played part of a chunk
they cut and count the rest as dropped, so the recording of what the app played is never short.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from emulator.calls.models import AppAudioCounters

PCM = NDArray[np.int16]


@dataclass(slots=True)
class _Chunk:
    pcm: PCM  # at the call's rate
    original: PCM  # as the app sent it, at its own rate
    played: int = 0  # samples of ``pcm`` already played
    counted: int = 0  # samples of ``original`` already counted as played

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
class Played:
    """What one tick of playout produced."""

    pcm: PCM | None  # one frame of app audio (zero-padded at the end of a chunk), None when idle
    marks: list[str] = field(default_factory=list)  # marks whose preceding audio has finished


@dataclass(slots=True)
class PlayoutQueue:
    frame_samples: int  # samples per 20 ms at the call's rate
    # Shared with the stream's record, so the control plane shows them while it runs and after it ends.
    counters: AppAudioCounters = field(default_factory=AppAudioCounters)
    _items: deque[_Chunk | _Mark] = field(default_factory=deque)
    played: list[PCM] = field(default_factory=list)  # what was actually heard, in the app's format
    # False: ``played`` stays empty (another leg's voice, media/bridge.py: nobody records it from here).
    keep_played: bool = True
    clears: int = 0  # how many times the app sent clear (the conversation metrics' barge-ins)

    @property
    def is_pending(self) -> bool:
        """Anything queued at all, audio or marks: ``take`` has something to do."""
        return bool(self._items)

    @property
    def is_playing(self) -> bool:
        return bool(self._items) and any(isinstance(item, _Chunk) for item in self._items)

    def add_audio(self, pcm: PCM, original: PCM) -> None:
        self._items.append(_Chunk(pcm, original))
        self.counters.accepted_chunks += 1
        self.counters.accepted_samples += len(original)

    def add_mark(self, name: str) -> list[str]:
        """Queue a mark; returns it at once (to be echoed now) when nothing is queued before it."""
        if not self._items:
            return [name]
        self._items.append(_Mark(name))
        return []

    def clear(self) -> list[str]:
        """Drop all queued audio at once; returns every pending mark, in order."""
        self.clears += 1
        return self._drop(at_end=False)

    def finish(self) -> list[str]:
        """The stream ended: the chunk playing now counts as played up to here, everything queued as
        unplayed. Returns the marks that will never be echoed (their audio never finished playing).
        Idempotent: a second call finds the queue empty."""
        return self._drop(at_end=True)

    def _drop(self, *, at_end: bool) -> list[str]:
        counters = self.counters
        marks: list[str] = []
        for item in self._items:
            if isinstance(item, _Mark):
                marks.append(item.name)
                continue
            if item.played and self.keep_played:
                self.played.append(item.played_original())
            lost = len(item.original) - item.counted
            counters.dropped_chunks += 1
            counters.dropped_samples += lost
            if at_end:
                counters.unplayed_chunks += 1
                counters.unplayed_samples += lost
        self._items.clear()
        return marks

    def take(self) -> Played:
        """Play one frame: up to ``frame_samples`` of queued audio, and the marks it gets past."""
        tick = Played(pcm=None)
        if not self._items:  # the usual tick: the app sent nothing (or it has all played)
            return tick
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
            self._count_played(item)
            if item.remaining == 0:
                self.counters.played_chunks += 1
                if self.keep_played:
                    self.played.append(item.original)
                self._items.popleft()
        tick.pcm = out
        return tick

    def _count_played(self, chunk: _Chunk) -> None:
        # Counted as it plays, in the app's samples, so the counters are exact at any moment.
        now = len(chunk.played_original())
        self.counters.played_samples += now - chunk.counted
        chunk.counted = now

    def played_pcm(self) -> PCM:
        return np.concatenate(self.played) if self.played else np.zeros(0, dtype=np.int16)
