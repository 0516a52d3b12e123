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
from emulator.scenarios.synth import resample, to_int16
from emulator.timing import FRAME_MS

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
        self.outbound_frames: dict[int, np.ndarray] = {}  # ticks where the app's audio was mixed in, as sent
        self.heard: dict[int, np.ndarray] = {}  # the same, at the call's rate, for ticks the stream did not send it
        self.call_rate = media.sample_rate  # the rate of ``heard`` (the stream sets it)
        self.playout: PlayoutQueue | None = None
        self.app_rate = media.sample_rate

    def add_tick(self, tick: MediaTick) -> None:
        """One tick of the call as this stream sent it (its outbound mix, if any, is noted by the stream)."""
        if self.outbound_from is None:
            self.outbound_from = tick.outbound
        mixed = tick.mixed
        if mixed is not None and self.ticks not in self.outbound_frames:
            # What the caller heard, kept when this stream does not send the outbound track (one that does has
            # noted the frame it sent): the array the engine made for the tick, at the call's rate, converted only
            # when the recording is read.
            self.heard[self.ticks] = mixed
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

    def _inbound_pcm(self, start: int, stop: int) -> np.ndarray:
        compiled, fs = self.media.script, self.frame_samples
        sent = self._inbound[2 * start : 2 * stop]
        frames = [
            np.zeros(fs, dtype=np.int16)
            if segment == _SILENCE
            else compiled.frame(Tick(0, segment=None if segment == _IDLE else segment, frame=frame))
            for segment, frame in zip(sent[::2], sent[1::2], strict=True)
        ]
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def _outbound_pcm(self, start: int, stop: int) -> np.ndarray:
        """Ticks ``start`` to ``stop`` of the outbound track: the scenario's outbound script (silence past its end),
        and where more was heard (the app, speak, playback), what was heard. Costs the range, not the track."""
        fs = self.frame_samples
        out = np.zeros((stop - start) * fs, dtype=np.int16)
        first = (self.outbound_from or 0) + start
        part = self.media.outbound_pcm[first * fs : (first + stop - start) * fs]
        out[: len(part)] = part
        if self.outbound_frames or self.heard:
            for tick in range(start, stop):
                frame = self.outbound_frames.get(tick)
                if frame is None and (heard := self.heard.get(tick)) is not None:
                    frame = self._at_stream_rate(heard)
                if frame is not None:
                    out[(tick - start) * fs : (tick - start + 1) * fs] = frame[:fs]
        return out

    def _at_stream_rate(self, pcm: np.ndarray) -> np.ndarray:
        fs = self.frame_samples
        if self.call_rate != self.media.sample_rate:
            pcm = to_int16(resample(pcm.astype(np.float32) / 32768.0, self.call_rate, self.media.sample_rate))
        return pcm if len(pcm) >= fs else np.concatenate([pcm, np.zeros(fs - len(pcm), dtype=np.int16)])

    def pcm(self, track: str) -> tuple[np.ndarray, int]:
        """The track's samples and sample rate; ``track`` is inbound, outbound or app."""
        if track == "inbound":
            return self._inbound_pcm(0, self.ticks), self.media.sample_rate
        if track == "outbound":
            return self._outbound_pcm(0, self.ticks), self.media.sample_rate
        if track == "app":
            played = self.playout.played_pcm() if self.playout is not None else np.zeros(0, dtype=np.int16)
            return played, self.app_rate
        raise KeyError(track)

    def levels(self, track: str, start: int, stop: int) -> list[float]:
        """The peak of each 20 ms frame sent on ``track`` (inbound or outbound) from tick ``start`` to ``stop``,
        0 to 1 (full scale), to 3 decimals: a live waveform's next columns, without rendering the whole track."""
        stop = min(stop, self.ticks)
        if stop <= start:
            return []
        pcm = self._inbound_pcm(start, stop) if track == "inbound" else self._outbound_pcm(start, stop)
        peaks = np.abs(pcm.reshape(stop - start, self.frame_samples).astype(np.int32)).max(axis=1)
        return [round(float(peak) / 32768, 3) for peak in peaks]

    def caller_steps(self) -> list[tuple[int, str]]:
        """What the caller did on this stream, as ``(ms from the stream's first tick, label)``: the words it said
        and the keys it pressed as they began, each wait for the app, and the end of its script."""
        steps: list[tuple[int, str]] = []
        script = self.media.script
        for segment, first_tick, first_frame, frames in self._runs():
            at = first_tick * FRAME_MS
            if segment == _SILENCE:  # a caller who stays on the line may still act live afterwards
                if not any(label == "script over" for _, label in steps):
                    steps.append((at, "script over"))
                continue
            if segment == _IDLE:
                steps.append((at, "waits for the app"))
                continue
            audio = script.audio(segment)
            events = [(e.at_ms, f"says \u201c{e.text}\u201d") for e in audio.speech]
            events += [(e.at_ms, f"presses {e.digit}") for e in audio.dtmf]
            heard = (first_frame * FRAME_MS, (first_frame + frames) * FRAME_MS)  # the part this stream sent
            shown = [(at + at_ms - heard[0], label) for at_ms, label in sorted(events) if heard[0] <= at_ms < heard[1]]
            if (not shown or shown[0][0] > at) and script.is_voiced_between(segment, first_frame, first_frame + frames):
                shown.insert(0, (at, "sound"))  # a tone, a file: audio without words or keys (silence is not marked)
            steps += shown
        return steps

    def _runs(self) -> list[tuple[int, int, int, int]]:
        """The inbound track as runs of one segment: ``(segment, first tick, its first frame, frames)``."""
        runs: list[tuple[int, int, int, int]] = []
        sent = self._inbound
        for tick, (segment, frame) in enumerate(zip(sent[::2], sent[1::2], strict=True)):
            if runs and runs[-1][0] == segment and (segment < 0 or frame == runs[-1][2] + runs[-1][3]):
                last = runs[-1]
                runs[-1] = (segment, last[1], last[2], last[3] + 1)
            else:
                runs.append((segment, tick, frame, 1))
        return runs

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
