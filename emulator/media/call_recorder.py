"""CallRecording: what record_start captures of a call, tick by tick, and the WAV or MP3 file it becomes.

The call's two sides at the call's rate: ``inbound`` is the caller, ``outbound`` what the call plays to it
(the scenario's outbound track, speech, playbacks, the app's streamed audio). ``channels: single`` mixes the
recorded track(s) into one channel; ``dual`` keeps the caller on the left and the call's audio on the right,
as Telnyx's dual-channel recordings do. A paused recording adds nothing (the file has no gap, as Telnyx's).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import soundfile
from numpy.typing import NDArray

from emulator.timing import FRAME_MS

PCM = NDArray[np.int16]
SUBTYPES = {"wav": ("WAV", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III")}


@dataclass(slots=True, eq=False)
class CallRecording:
    recording_id: str
    format: str  # wav or mp3
    channels: str  # single or dual
    track: str = "both"  # both, inbound or outbound
    max_ticks: int = 0  # 0: no limit
    started_at: str = ""  # ISO 8601, for call.recording.saved
    ended_at: str = ""
    paused: bool = False
    file_name: str = ""  # custom_file_name, else the call leg's id
    base_url: str = ""  # where the emulator serves the file
    inbound: list[PCM] = field(default_factory=list)
    outbound: list[PCM] = field(default_factory=list)

    @property
    def ticks(self) -> int:
        return len(self.inbound)

    @property
    def is_full(self) -> bool:
        return self.max_ticks > 0 and self.ticks >= self.max_ticks

    def add(self, inbound: PCM, outbound: PCM) -> None:
        if not self.paused and not self.is_full:
            self.inbound.append(inbound)
            self.outbound.append(outbound)

    @property
    def duration_ms(self) -> int:
        return self.ticks * FRAME_MS

    def audio(self) -> PCM:
        """The samples as the file holds them: one column, or two for dual (caller left, call right)."""
        empty = np.zeros(0, dtype=np.int16)
        caller = np.concatenate(self.inbound) if self.inbound else empty
        call = np.concatenate(self.outbound) if self.outbound else empty
        if self.track == "inbound":
            call = np.zeros_like(call)
        elif self.track == "outbound":
            caller = np.zeros_like(caller)
        if self.channels == "dual":
            both: PCM = np.stack([caller, call], axis=1)
            return both
        mixed: PCM = np.clip(caller.astype(np.int32) + call, -32768, 32767).astype(np.int16)
        return mixed

    def encode(self, rate: int) -> bytes:
        """The recording as a WAV or MP3 file."""
        kind, subtype = SUBTYPES[self.format]
        buffer = io.BytesIO()
        soundfile.write(buffer, self.audio(), rate, format=kind, subtype=subtype)
        return buffer.getvalue()
