"""CallAudio: what the call itself plays (speak, playback, send_dtmf), 20 ms at a time. Pure bookkeeping.

Clips queue up and play one after another, as Telnyx queues consecutive speak and playback commands; an
``overlay`` clip plays on top of the queue instead of waiting its turn, and DTMF the app sends plays at once.
Every tick ``take`` returns the frame to mix into the call's outbound audio and what happened: a clip
started, or ended (``completed``; ``cancelled`` by a stop; ``call_hangup`` when the call ended first)::

    audio = CallAudio(frame_samples=160)
    audio.add(Clip("speak-1", "speak", pcm, heard_by_caller=True))
    frame, events = audio.take()   # (160 samples, (ClipEvent("started", clip),))
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from emulator.media.clip_audio import PAUSES_MS
from emulator.scenarios.turns import AppEvent

PCM = NDArray[np.int16]


@dataclass(slots=True, eq=False)
class Clip:
    key: str  # unique on the call: which command it came from
    kind: str  # speak, playback or dtmf: which webhooks it has
    pcm: PCM | None  # at the call's rate, one pass of the audio; None while it is being rendered
    heard_by_caller: bool = True  # target_legs self/both: mixed into the caller's outbound audio
    loops: int | None = 1  # passes to play; None: until stopped
    overlay: bool = False  # plays on top of the queue, not in it
    details: dict[str, Any] = field(default_factory=dict)  # what its webhooks report (media_url, ...)
    position: int = 0  # samples played in the current pass
    passes: int = 0  # passes completed
    started: bool = False

    @property
    def is_done(self) -> bool:
        return self.loops is not None and self.passes >= self.loops


class ClipEvent(NamedTuple):
    what: str  # started or ended
    clip: Clip
    status: str | None = None  # ended: completed, cancelled or call_hangup


# A clip's kind -> the caller's name for it in wait_for events (a gather's spoken prompt is speech).
_CLIP_NAMES = {"speak": "speak", "gather": "speak", "playback": "playback"}


class CallAudio:
    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self.queue: deque[Clip] = deque()
        self.overlays: list[Clip] = []
        # Every start and end of a clip the caller hears, however it came (played, stopped, removed), until
        # the engine takes them for the caller's waits.
        self.heard: list[ClipEvent] = []

    def _report(self, events: list[ClipEvent]) -> list[ClipEvent]:
        self.heard.extend(event for event in events if event.clip.heard_by_caller)
        return events

    @property
    def is_pending(self) -> bool:
        return bool(self.queue or self.overlays)

    @property
    def is_heard(self) -> bool:
        """The caller hears one of the call's clips now (the app is talking, for the caller's turn-taking)."""
        playing = self.overlays + ([self.queue[0]] if self.queue else [])
        return any(clip.heard_by_caller and clip.pcm is not None for clip in playing)

    def playing(self) -> list[Clip]:
        """The clips queued or playing (the queue's, then the overlays)."""
        return [*self.queue, *self.overlays]

    def remove(self, clip: Clip, status: str) -> list[ClipEvent]:
        """Take one clip out (its audio could not be had): it ends with ``status``, started or not."""
        if clip in self.queue:
            self.queue.remove(clip)
        elif clip in self.overlays:
            self.overlays.remove(clip)
        else:
            return []
        return self._report([ClipEvent("ended", clip, status)])

    def add(self, clip: Clip) -> None:
        if clip.overlay:
            self.overlays.append(clip)
        else:
            self.queue.append(clip)

    def stop(
        self,
        which: str = "all",
        kinds: frozenset[str] | None = None,
        status: str = "cancelled",
        overlay: bool | None = None,
        key: str | None = None,
    ) -> list[ClipEvent]:
        """End the current clip (``current``) or every clip (``all``), of ``kinds`` if given; ``overlay`` True
        stops the overlays only, False the queue only, None both (``current``: the queue's head first).

        A clip stopped before it started still ends, so every command that queued audio hears how it ended."""
        if overlay is None:
            candidates = [*self.queue, *self.overlays]
        else:
            candidates = list(self.overlays if overlay else self.queue)
        if key is not None:  # one clip, by its key (a gather's prompt)
            candidates = [clip for clip in candidates if clip.key == key]
        elif which == "current":
            candidates = candidates[:1]
        stopped = [clip for clip in candidates if kinds is None or clip.kind in kinds]
        for clip in stopped:
            if clip.overlay:
                self.overlays.remove(clip)
            else:
                self.queue.remove(clip)
        return self._report([ClipEvent("ended", clip, status) for clip in stopped])

    def take(self) -> tuple[PCM | None, tuple[ClipEvent, ...]]:
        """One frame of the clips the caller hears (None: none of them), and the clips that started or ended."""
        events: list[ClipEvent] = []
        mixed: NDArray[np.int32] | None = None
        playing = list(self.overlays)
        if self.queue:
            playing.append(self.queue[0])
        for clip in playing:
            if clip.pcm is None:  # still being rendered (speech): it holds its place in the queue, silent
                continue
            if not clip.started:
                clip.started = True
                events.append(ClipEvent("started", clip))
            frame = self._frame(clip)
            if clip.heard_by_caller:
                if mixed is None:
                    mixed = np.zeros(self.frame_samples, dtype=np.int32)
                mixed += frame
            if clip.is_done:
                events.append(ClipEvent("ended", clip, "completed"))
                if clip.overlay:
                    self.overlays.remove(clip)
                else:
                    self.queue.popleft()
        pcm = None if mixed is None else np.clip(mixed, -32768, 32767).astype(np.int16)
        return pcm, tuple(self._report(events) if events else ())

    def take_heard(self) -> tuple[AppEvent, ...]:
        """What the caller heard of the call's clips since the last tick, as its waits take it; drains ``heard``."""
        events: list[AppEvent] = []
        for event in self.heard:
            clip = event.clip
            if clip.kind == "dtmf":
                if event.what == "ended" and event.status == "completed":  # the tones have all played
                    events.append(("dtmf", "".join(k for k in clip.details.get("digits", "") if k not in PAUSES_MS)))
            elif clip.kind in _CLIP_NAMES:
                events.append((f"{_CLIP_NAMES[clip.kind]}_{'start' if event.what == 'started' else 'end'}", ""))
        self.heard.clear()
        return tuple(events)

    def _frame(self, clip: Clip) -> PCM:
        """The clip's next frame, looping as it says; zero-padded past its last pass."""
        fs = self.frame_samples
        out = np.zeros(fs, dtype=np.int16)
        filled = 0
        assert clip.pcm is not None
        length = len(clip.pcm)
        while filled < fs and not clip.is_done:
            if length == 0:  # nothing to play: done at once, however many loops it asked for
                clip.loops = clip.passes = max(clip.passes, 1)
                break
            n = min(fs - filled, length - clip.position)
            out[filled : filled + n] = clip.pcm[clip.position : clip.position + n]
            filled += n
            clip.position += n
            if clip.position >= length:
                clip.position = 0
                clip.passes += 1
        return out
