"""Audio the app sends back on a bidirectional stream, decoded into PCM the call can play.

- ``stream_bidirectional_mode: rtp``: each payload is raw audio in ``stream_bidirectional_codec``
  (no RTP header) — PCMU/PCMA at 8 kHz, G722 at 16 kHz, L16 big-endian at
  ``stream_bidirectional_sampling_rate``. A chunk must hold 20 ms to 30 s of audio.
- ``mp3`` (Telnyx's default mode): each payload is a whole MP3 file, decoded with soundfile. Other
  formats libsndfile could read (WAV, FLAC, OGG) are refused: Telnyx takes MP3 only.

Either way the result is kept twice: as the app sent it (for the recording) and resampled to the
call's rate (mixed into the call's outbound audio).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile

from emulator.media import codecs
from emulator.media.frames import MALFORMED, FrameProblem
from emulator.scenarios.synth import resample, to_int16

RTP_MIN_MS = 20
RTP_MAX_MS = 30_000
# The largest WebSocket message the app may send. The longest rtp chunk, 30 s of L16 at 48 kHz, is
# 2.88 MB, 3.84 MB in base64; an MP3 file gets twice that room (~6 MB: over 6 minutes at 128 kbit/s).
# Above it the connection is closed with 1009: websockets holds each message whole in memory.
MAX_MESSAGE_BYTES = 8 * 2**20
_MP3_ONLY = (
    "With stream_bidirectional_mode mp3 each payload must be a whole MP3 file; "
    "send raw audio with stream_bidirectional_mode rtp."
)


class MediaRejected(Exception):
    def __init__(self, problem: FrameProblem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def _reject(detail: str) -> MediaRejected:
    return MediaRejected(FrameProblem(*MALFORMED, detail))


@dataclass(frozen=True, slots=True)
class AppAudio:
    pcm: np.ndarray  # int16 at the call's rate (AppAudioDecoder's stream_rate)
    original: np.ndarray  # int16 at ``AppAudioDecoder.rate``


class AppAudioDecoder:
    """Decodes one stream's app payloads; stateful for G722, whose decoder carries state across chunks."""

    def __init__(self, mode: str, codec: str, sampling_rate: int, stream_rate: int) -> None:
        self.mode = mode
        self.codec = codec
        self.stream_rate = stream_rate
        if mode == "rtp":
            info = codecs.codec_info(codec)
            # Only L16 takes its rate from stream_bidirectional_sampling_rate; the others have one rate.
            self.rate = sampling_rate if info.codec is codecs.Codec.L16 else info.sample_rate
            # Every codec has a fixed byte rate, so a chunk's length is checked before it is decoded.
            self._bytes_per_second = (
                2 * self.rate if info.codec is codecs.Codec.L16 else info.frame_bytes * 1000 // codecs.FRAME_MS
            )
            self._decoder: codecs.Decoder | None = codecs.Decoder(codec)
        else:
            self.rate = stream_rate
            self._decoder = None

    def decode(self, payload: bytes) -> AppAudio:
        original = self._decode_rtp(payload) if self._decoder is not None else self._decode_mp3(payload)
        return AppAudio(resample(original, self.rate, self.stream_rate), original)

    def _decode_rtp(self, payload: bytes) -> np.ndarray:
        assert self._decoder is not None
        # Validate before decoding: a rejected chunk must not reach the G.722 decoder, whose state
        # would then corrupt the chunks after it.
        if self.codec == "L16" and len(payload) % 2:
            raise _reject(f"L16 payloads hold 16-bit samples; got an odd length of {len(payload)} bytes.")
        duration_ms = len(payload) * 1000 / self._bytes_per_second
        if not RTP_MIN_MS <= duration_ms <= RTP_MAX_MS:
            raise _reject(
                f"Media chunk holds {duration_ms:g} ms of {self.codec} at {self.rate} Hz; "
                f"chunks must be {RTP_MIN_MS} ms to {RTP_MAX_MS // 1000} s."
            )
        return self._decoder.decode(payload)

    def _decode_mp3(self, payload: bytes) -> np.ndarray:
        try:
            with soundfile.SoundFile(io.BytesIO(payload)) as file:
                kind, rate = file.format, file.samplerate
                samples = file.read(dtype="float32", always_2d=True) if kind == "MP3" else None
        except (RuntimeError, TypeError, ValueError) as exc:
            # libsndfile's own words, not the exception's text, which quotes a Python object's repr.
            why = exc.error_string if isinstance(exc, soundfile.LibsndfileError) else "it could not be decoded"
            raise _reject(f"Media payload is not an MP3 file ({why.rstrip('.')}). {_MP3_ONLY}") from None
        if samples is None:
            raise _reject(f"Media payload is a {kind} file, not MP3. {_MP3_ONLY}")
        if samples.shape[0] == 0:
            raise _reject("Media payload is an MP3 file without audio.")
        mono = samples.mean(axis=1)
        return to_int16(resample(mono, int(rate), self.stream_rate))
