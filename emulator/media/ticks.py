"""What the media engine (media/engine.py) hands out each 20 ms tick, and what it takes from each stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from emulator.media.call_audio import ClipEvent
from emulator.media.call_recorder import CallRecording
from emulator.media.playout import PlayoutQueue
from emulator.scenarios.cursor import End, Tick

PCM = NDArray[np.int16]


@dataclass(slots=True)
class AppAudio:
    """One stream's audio back from the app: its playout queue, and the marks it must echo next tick."""

    playout: PlayoutQueue
    heard_by_caller: bool  # stream_bidirectional_target_legs opposite/both: mixed into the outbound track
    marks_due: list[str] = field(default_factory=list)  # appended to by the app's messages and by playout


class MediaTick(NamedTuple):
    """What one 20 ms tick of a call held. A NamedTuple: one is built per call every 20 ms."""

    number: int  # ticks since the call's media began (the answer)
    inbound: Tick | None  # the caller's frame (cursor position), None once its script is over: silence
    outbound: int  # the frame of the scenario's outbound track (silence past its end)
    mixed: PCM | None  # the whole outbound frame at the call's rate, when the caller hears more than the scenario
    dtmf: tuple[str, ...]  # digits the caller finished pressing; reported before this tick's media
    marks: dict[str, list[str]]  # per app audio source (stream id): marks echoed at this tick, before media
    end: End | None = None  # the caller is done: no media in this tick, the call ends as it says
    events: tuple[ClipEvent, ...] = ()  # the call's own clips (speak, playback) that started or ended
    saved: tuple[CallRecording, ...] = ()  # recordings that ended at this tick (max_length, or the call's end)
    gathered: tuple[str, str] | None = None  # the gather that ended at this tick: (status, digits)
    cues: tuple[object, ...] = ()  # timers due at this tick (``add_timer``), in the order they were set
    said: tuple[tuple[str, bool], ...] = ()  # the caller's words heard by now (``Tick.said``): transcription
