"""Recordings of a stream: what the emulator sent (inbound and outbound tracks) and what the app
played, as 16-bit mono WAV. Kept in memory for the most recent streams, optionally written to disk."""

from __future__ import annotations

import io
import wave
from array import array
from collections import OrderedDict
from pathlib import Path

import numpy as np

from emulator.media.library import StreamMedia
from emulator.media.playout import PlayoutQueue
from emulator.media.ticks import MediaTick
from emulator.scenarios.cursor import Tick

TRACKS = ("inbound", "outbound", "app")
_IDLE, _SILENCE = -2, -1  # Recording's codes for a tick with no script segment


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


class Recording:
    """One stream's audio, composed on demand from what the stream did tick by tick."""

    def __init__(self, stream_id: str, media: StreamMedia, frame_samples: int) -> None:
        self.stream_id = stream_id
        self.media = media
        self.frame_samples = frame_samples
        self.ticks = 0  # 20 ms frames sent so far
        self.outbound_from: int | None = None  # the frame of the scenario's outbound track at the stream's first tick
        # What the caller's track sent at each tick, two ints per tick: the script segment (_IDLE: the idle
        # loop of a wait; _SILENCE: after the script ended) and the frame. An array rather than a list of
        # tuples: every stream adds 50 a second, and tuples are objects the garbage collector walks.
        self._inbound = array("i")
        self.outbound_frames: dict[int, np.ndarray] = {}  # ticks where the app's audio was mixed in
        self.playout: PlayoutQueue | None = None
        self.app_rate = media.sample_rate

    def add_tick(self, tick: MediaTick) -> None:
        """One tick of the call as this stream sent it (its outbound mix, if any, is noted by the stream)."""
        if self.outbound_from is None:
            self.outbound_from = tick.outbound
        step = tick.inbound  # add_inbound, inlined: this runs for every stream every 20 ms
        if step is None:
            self._inbound.extend((_SILENCE, 0))
        else:
            self._inbound.extend((_IDLE if step.segment is None else step.segment, step.frame))
        self.ticks += 1

    def add_inbound(self, step: Tick | None) -> None:
        """One tick of the caller's track: the script's frame, or silence (None) once the script has ended."""
        if step is None:
            self._inbound.extend((_SILENCE, 0))
        else:
            self._inbound.extend((_IDLE if step.segment is None else step.segment, step.frame))

    def _sent(self, source: np.ndarray) -> np.ndarray:
        total = self.ticks * self.frame_samples
        out = np.zeros(total, dtype=np.int16)
        start = (self.outbound_from or 0) * self.frame_samples
        part = source[start : start + total]
        out[: len(part)] = part  # past the scenario's end the track was silence
        return out

    def pcm(self, track: str) -> tuple[np.ndarray, int]:
        """The track's samples and sample rate; ``track`` is inbound, outbound or app."""
        if track == "inbound":
            compiled, fs = self.media.script, self.frame_samples
            sent = self._inbound
            frames = [
                np.zeros(fs, dtype=np.int16)
                if segment == _SILENCE
                else compiled.frame(Tick(0, segment=None if segment == _IDLE else segment, frame=frame))
                for segment, frame in zip(sent[::2], sent[1::2], strict=True)
            ]
            pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
            return pcm, self.media.sample_rate
        if track == "outbound":
            out = self._sent(self.media.outbound_pcm)
            for tick, frame in self.outbound_frames.items():
                out[tick * self.frame_samples : (tick + 1) * self.frame_samples] = frame
            return out, self.media.sample_rate
        if track == "app":
            played = self.playout.played_pcm() if self.playout is not None else np.zeros(0, dtype=np.int16)
            return played, self.app_rate
        raise KeyError(track)

    def wav(self, track: str) -> bytes:
        return wav_bytes(*self.pcm(track))

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for track in TRACKS:
            path = directory / f"{self.stream_id}-{track}.wav"
            path.write_bytes(self.wav(track))
            paths.append(path)
        return paths


class RecordingStore:
    """The recordings of the ``keep`` most recent streams (older ones are forgotten, bounding memory)."""

    def __init__(self, keep: int = 50, directory: Path | None = None) -> None:
        self.keep = keep
        self.directory = directory  # where finished streams' WAV files are written, if anywhere
        self._recordings: OrderedDict[str, Recording] = OrderedDict()

    def add(self, recording: Recording) -> None:
        self._recordings[recording.stream_id] = recording
        while len(self._recordings) > self.keep:
            self._recordings.popitem(last=False)

    def get(self, stream_id: str) -> Recording | None:
        return self._recordings.get(stream_id)

    def clear(self) -> None:
        self._recordings.clear()
