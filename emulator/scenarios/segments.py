"""A track compiled for the stream engine: its steps rendered at one rate and cut into segments.

``compile_track(steps, rate)`` turns a track's steps into **segments** the engine walks one 20 ms tick at a time
(``emulator.scenarios.cursor``):

* ``AudioSegment`` — PCM at the stream's rate plus its DTMF events. Adjacent audio steps are merged into one
  segment and ``repeat`` is expanded, so segments alternate with waits. Every segment but the track's last is a
  whole number of frames, so the next one starts on a frame boundary.
* ``WaitSegment`` — the caller waits for the app (a ``WaitFor``); meanwhile the engine sends the track's idle
  frames (``CompiledTrack.idle``: silence, or the scenario's background noise).
* ``HangupSegment`` — the caller hangs up: the engine sends ``call.hangup`` and ends the stream.

Compiling is pure and deterministic, and its result is immutable: compile once per (scenario, codec) and share it
between every stream that plays it. The one thing that grows is ``live``: audio segments the control plane asks a
call's caller to play now (``POST /_emulator/calls/{id}/caller``, ``MediaLibrary.add_live``), appended once per
distinct step and never removed, so their positions stay valid for every call of the scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray

from emulator.levels import voiced_frames
from emulator.scenarios import synth
from emulator.scenarios.steps import (
    AudioStep,
    DtmfEvent,
    Hangup,
    Mix,
    Noise,
    Rendered,
    Say,
    Step,
    Track,
    WaitFor,
    expand,
)
from emulator.timing import FRAME_MS

# Background noise is one seamless loop this long, reused for the whole call: long enough that its repetition
# is not heard, short enough to keep (4 s at 16 kHz is 128 KB of int16).
NOISE_LOOP_MS: Final = 4000


@dataclass(frozen=True, slots=True)
class SpeechEvent:
    """A ``say`` step's words, where they are in their segment: what a transcription of the call hears."""

    at_ms: int  # relative to the segment's start
    text: str
    duration_ms: int


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: comparing numpy arrays has no single truth value
class AudioSegment:
    pcm: NDArray[np.int16]  # at the track's rate
    dtmf: tuple[DtmfEvent, ...]  # at_ms relative to the segment's start
    speech: tuple[SpeechEvent, ...] = ()  # the say steps' words, at_ms relative to the segment's start


@dataclass(frozen=True, slots=True)
class WaitSegment:
    condition: WaitFor


@dataclass(frozen=True, slots=True)
class HangupSegment:
    cause: str = "normal_clearing"


Segment = AudioSegment | WaitSegment | HangupSegment


class FramePosition(Protocol):
    """Which frame to send: a segment's (by index) or, with ``segment`` None, the idle loop's (``script.Tick``)."""

    @property
    def segment(self) -> int | None: ...

    @property
    def frame(self) -> int: ...


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTrack:
    segments: tuple[Segment, ...]
    sample_rate: int
    frame_samples: int
    idle: NDArray[np.int16]  # a whole number of frames (at least one), looped while the caller waits
    # frames_in of every segment (0 for those without audio), computed once: the cursor reads it every tick.
    segment_frames: tuple[int, ...] = field(init=False)
    # Whether each frame is a voice (emulator/levels.py), per segment (empty for those without audio) and for the
    # idle loop: the conversation metrics read the caller's side from these, never from the samples.
    voiced: tuple[NDArray[np.bool_], ...] = field(init=False)
    idle_voiced: NDArray[np.bool_] = field(init=False)
    # Live segments (module docstring): position ``len(segments) + k`` is ``live[k]``, so a cursor's ``Tick`` names
    # one as it names a script segment. Appended to in place (``add_live``); the script's own never change.
    live: list[AudioSegment] = field(init=False, default_factory=list)
    live_voiced: list[NDArray[np.bool_]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        fs = self.frame_samples
        frames = tuple(-(-len(s.pcm) // fs) if isinstance(s, AudioSegment) else 0 for s in self.segments)
        object.__setattr__(self, "segment_frames", frames)
        none = np.zeros(0, dtype=np.bool_)
        voiced = tuple(voiced_frames(s.pcm, fs) if isinstance(s, AudioSegment) else none for s in self.segments)
        object.__setattr__(self, "voiced", voiced)
        object.__setattr__(self, "idle_voiced", voiced_frames(self.idle, fs))

    def is_voiced(self, at: FramePosition) -> bool:
        """Whether the caller's frame at ``at`` is a voice."""
        index = at.segment
        if index is None:
            return bool(self.idle_voiced[at.frame])
        script = len(self.segments)
        return bool((self.voiced[index] if index < script else self.live_voiced[index - script])[at.frame])

    def is_voiced_between(self, index: int, start: int, stop: int) -> bool:
        """Whether any of frames ``start`` to ``stop`` of the segment at ``index`` is a voice."""
        script = len(self.segments)
        voiced = self.voiced[index] if index < script else self.live_voiced[index - script]
        return bool(voiced[start:stop].any())

    def add_live(self, segment: AudioSegment) -> int:
        """Append a live segment; returns its position (see ``live``)."""
        segment.pcm.setflags(write=False)
        self.live.append(segment)
        self.live_voiced.append(voiced_frames(segment.pcm, self.frame_samples))
        return len(self.segments) + len(self.live) - 1

    def audio(self, index: int) -> AudioSegment:
        """The AudioSegment at position ``index``: the script's, or a live one."""
        script = len(self.segments)
        segment = self.segments[index] if index < script else self.live[index - script]
        assert isinstance(segment, AudioSegment)
        return segment

    @property
    def idle_frames(self) -> int:
        return len(self.idle) // self.frame_samples

    def frames_in(self, index: int) -> int:
        """Frames of the AudioSegment at ``index`` (the track's last segment may end with a partial frame)."""
        return -(-len(self.audio(index).pcm) // self.frame_samples)

    def frame(self, at: FramePosition) -> NDArray[np.int16]:
        """The inbound samples at ``at``: exactly one frame, zero-padded at the very end of the audio."""
        fs = self.frame_samples
        if at.segment is None:
            return self.idle[at.frame * fs : (at.frame + 1) * fs]
        pcm = self.audio(at.segment).pcm[at.frame * fs : (at.frame + 1) * fs]
        return pcm if len(pcm) == fs else np.concatenate([pcm, np.zeros(fs - len(pcm), dtype=np.int16)])


def frame_samples(rate: int) -> int:
    return synth.ms_to_samples(FRAME_MS, rate)


def compile_track(steps: Sequence[Step], sample_rate: int, mix: Mix | None = None) -> CompiledTrack:
    """Pure: render the audio steps at ``sample_rate``, merge neighbours, and cut the track at waits and hangups.

    A ``Track`` brings its own mix; an explicit ``mix`` wins over it.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if mix is None:
        mix = steps.mix if isinstance(steps, Track) else Mix()
    fs = frame_samples(sample_rate)
    noise = _noise_loop(mix.noise, sample_rate)
    rendered: dict[int, Rendered] = {}  # by step identity: a repeated step renders (and resamples) once
    segments: list[Segment] = []
    group: list[AudioStep] = []
    noise_at = 0  # where in the noise loop the next audio segment starts, so segments do not all sound alike

    def flush(last: bool) -> None:
        nonlocal noise_at
        if not group:
            return
        parts: list[NDArray[np.int16]] = []
        events: list[DtmfEvent] = []
        speech: list[SpeechEvent] = []
        pos = 0
        for step in group:
            pcm, step_events = rendered.get(id(step)) or rendered.setdefault(id(step), step.render(sample_rate))
            offset_ms = (pos * 1000 + sample_rate // 2) // sample_rate
            events.extend(DtmfEvent(e.at_ms + offset_ms, e.digit, e.duration_ms) for e in step_events)
            if isinstance(step, Say):
                speech.append(SpeechEvent(offset_ms, step.text, len(pcm) * 1000 // sample_rate))
            parts.append(pcm)
            pos += len(pcm)
        if not last and pos % fs:
            parts.append(np.zeros(fs - pos % fs, dtype=np.int16))  # the next segment starts on a frame boundary
        pcm_all = np.concatenate(parts)
        segments.append(AudioSegment(_mixed(pcm_all, mix.gain, noise, noise_at), tuple(events), tuple(speech)))
        noise_at += len(pcm_all)
        group.clear()

    for step in expand(steps):
        if isinstance(step, WaitFor):
            flush(last=False)
            segments.append(WaitSegment(step))
        elif isinstance(step, Hangup):
            flush(last=False)
            segments.append(HangupSegment(step.cause))
            break  # the caller is gone: nothing after a hangup can play
        else:
            group.append(step)
    flush(last=True)
    idle = synth.to_int16(noise) if noise is not None else np.zeros(fs, dtype=np.int16)
    for segment in segments:
        if isinstance(segment, AudioSegment):
            segment.pcm.setflags(write=False)  # shared by every stream of this scenario and codec
    idle.setflags(write=False)
    return CompiledTrack(tuple(segments), sample_rate, fs, idle)


def _noise_loop(noise: Noise | None, rate: int) -> NDArray[np.float64] | None:
    if noise is None:
        return None
    n = synth.ms_to_samples(NOISE_LOOP_MS, rate)
    return synth.noise(noise.color, noise.level, n - n % frame_samples(rate), rate, noise.seed)


def _mixed(pcm: NDArray[np.int16], gain_db: float, noise: NDArray[np.float64] | None, at: int) -> NDArray[np.int16]:
    if gain_db == 0 and noise is None:
        return pcm  # untouched, so a 16-bit file at the stream's rate still passes through bit for bit
    out = pcm.astype(np.float64) / 32768.0 * 10.0 ** (gain_db / 20.0)
    if noise is not None:
        out += np.resize(np.roll(noise, -(at % len(noise))), len(out))  # np.resize repeats the loop
    return synth.to_int16(out)
