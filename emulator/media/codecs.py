"""Audio codecs for the media stream.

Each ``media`` frame carries ``payload``: the base64 of raw codec bytes for
:data:`FRAME_MS` (20 ms) of mono audio. There is no RTP header. Sizes per
frame:

======  ===========  ===========  ====================================
Codec   PCM rate     Frame bytes  Payload
======  ===========  ===========  ====================================
PCMU    8000 Hz      160          G.711 μ-law, one byte per sample
PCMA    8000 Hz      160          G.711 A-law, one byte per sample
G722    16000 Hz     160          G.722 at 64 kbit/s, two samples/byte
L16     16000 Hz     640          signed 16-bit big-endian (RFC 2586)
======  ===========  ===========  ====================================

G.722 samples audio at 16 kHz, yet RFC 3551 (section 4.5.2) gives it an RTP
clock rate of 8000 Hz: RFC 1890 got it wrong and the value was kept for
backwards compatibility. Only RTP timestamps use that clock; this module works
on the audio itself, so :attr:`CodecInfo.sample_rate` is 16000 for G722.

PCM is always a 1-D :class:`numpy.ndarray` of ``int16``. :func:`encode` and
:func:`decode` handle whole buffers. :class:`Encoder` and :class:`Decoder`
handle a stream chunk by chunk, which matters for G.722 because it is
adaptive (ADPCM) and keeps state from one frame to the next.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import G722
import numpy as np
import numpy.typing as npt

from emulator.timing import FRAME_MS

__all__ = [
    "CODECS",
    "FRAME_MS",
    "Codec",
    "CodecInfo",
    "Decoder",
    "Encoder",
    "codec_info",
    "decode",
    "decode_alaw",
    "decode_l16",
    "decode_ulaw",
    "encode",
    "encode_alaw",
    "encode_l16",
    "encode_ulaw",
]

PCM = npt.NDArray[np.int16]


_G722_BITRATE = 64000


class Codec(enum.StrEnum):
    PCMU = "PCMU"
    PCMA = "PCMA"
    G722 = "G722"
    L16 = "L16"


@dataclass(frozen=True, slots=True)
class CodecInfo:
    codec: Codec
    sample_rate: int  # rate of the PCM audio, not the RTP clock rate
    frame_bytes: int  # payload bytes per FRAME_MS

    @property
    def frame_samples(self) -> int:
        """PCM samples per frame."""
        return self.sample_rate * FRAME_MS // 1000


CODECS: Mapping[Codec, CodecInfo] = MappingProxyType(
    {
        Codec.PCMU: CodecInfo(Codec.PCMU, 8000, 160),
        Codec.PCMA: CodecInfo(Codec.PCMA, 8000, 160),
        Codec.G722: CodecInfo(Codec.G722, 16000, 160),
        Codec.L16: CodecInfo(Codec.L16, 16000, 640),
    }
)


def codec_info(codec: Codec | str) -> CodecInfo:
    """Look up a codec by enum member or name; raise :exc:`ValueError` if unsupported."""
    try:
        return CODECS[Codec(codec)]
    except ValueError:
        supported = ", ".join(CODECS)
        raise ValueError(f"unsupported codec {codec!r}; expected one of {supported}") from None


# G.711, following ITU-T G.711 as implemented by audioop and SoX. Encoding is
# one lookup in a table indexed by every int16 value viewed as uint16. Those
# tables take a few ms to build, so they are built on first use, not at import.

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


@functools.cache
def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    x = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    # μ-law works on 14 bits. An arithmetic shift before taking the magnitude
    # rounds negatives away from zero: audioop does this, so -1 becomes 0x7E, not 0x7F.
    v = x >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    # 8158 + bias 33 = 8191 is the top of segment 7: the same code as clipping to 8159.
    m = np.minimum(np.abs(v), 8158) + 33
    seg = np.searchsorted(_ULAW_SEG_END, m)
    code = (seg << 4) | ((m >> (seg + 1)) & 0x0F)
    table: npt.NDArray[np.uint8] = (code ^ mask).astype(np.uint8)
    return table


@functools.cache
def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    x = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    v = x >> 3  # A-law works on 13 bits
    # Even-bit inversion (XOR 0x55) stops silence from being a run of zero bits on the line.
    mask = np.where(v < 0, 0x55, 0xD5)
    m = np.where(v < 0, ~v, v)  # one's complement: -1 and 0 share a magnitude
    seg = np.searchsorted(_ALAW_SEG_END, m)
    code = (seg << 4) | ((m >> np.maximum(seg, 1)) & 0x0F)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> PCM:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_decode() -> PCM:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t <<= np.maximum(seg - 1, 0)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_DECODE = _build_ulaw_decode()
_ALAW_DECODE = _build_alaw_decode()


def _check_pcm(pcm: PCM) -> PCM:
    # Refuse rather than cast: a float or int32 buffer here is a caller bug,
    # and a silent cast would wrap loud samples around.
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError(f"expected a 1-D int16 numpy array, got {type(pcm).__name__} {getattr(pcm, 'dtype', '')}")
    return pcm


def encode_ulaw(pcm: PCM) -> bytes:
    return _ulaw_encode_table()[_check_pcm(pcm).view(np.uint16)].tobytes()


def decode_ulaw(data: bytes) -> PCM:
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode_alaw(pcm: PCM) -> bytes:
    return _alaw_encode_table()[_check_pcm(pcm).view(np.uint16)].tobytes()


def decode_alaw(data: bytes) -> PCM:
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode_l16(pcm: PCM) -> bytes:
    return _check_pcm(pcm).astype(">i2").tobytes()


def decode_l16(data: bytes) -> PCM:
    if len(data) % 2:
        raise ValueError(f"L16 payload has odd length {len(data)}")
    return np.frombuffer(data, dtype=">i2").astype(np.int16)


class Encoder:
    """Encode a stream chunk by chunk; concatenated output equals :func:`encode` of the whole."""

    def __init__(self, codec: Codec | str) -> None:
        self.codec = codec_info(codec).codec
        self._g722 = G722.G722(16000, _G722_BITRATE) if self.codec is Codec.G722 else None
        # G.722 packs two samples per byte and the library drops an odd last
        # sample, so hold it back for the next chunk instead.
        self._carry: PCM = np.empty(0, dtype=np.int16)

    def encode(self, pcm: PCM) -> bytes:
        _check_pcm(pcm)
        if self._g722 is None:
            return _STATELESS_ENCODERS[self.codec](pcm)
        if self._carry.size:
            pcm = np.concatenate((self._carry, pcm))
        even = pcm.size & ~1
        self._carry = pcm[even:].copy()
        return bytes(self._g722.encode(np.ascontiguousarray(pcm[:even]))) if even else b""


class Decoder:
    """Decode a stream chunk by chunk; concatenated output equals :func:`decode` of the whole."""

    def __init__(self, codec: Codec | str) -> None:
        self.codec = codec_info(codec).codec
        self._g722 = G722.G722(16000, _G722_BITRATE) if self.codec is Codec.G722 else None

    def decode(self, data: bytes) -> PCM:
        if self._g722 is None:
            return _STATELESS_DECODERS[self.codec](data)
        return np.frombuffer(self._g722.decode(data), dtype=np.int16)


_STATELESS_ENCODERS = {Codec.PCMU: encode_ulaw, Codec.PCMA: encode_alaw, Codec.L16: encode_l16}
_STATELESS_DECODERS = {Codec.PCMU: decode_ulaw, Codec.PCMA: decode_alaw, Codec.L16: decode_l16}


def encode(codec: Codec | str, pcm: PCM) -> bytes:
    """Encode a whole buffer of PCM at the codec's sample rate."""
    return Encoder(codec).encode(pcm)


def decode(codec: Codec | str, data: bytes) -> PCM:
    """Decode a whole payload to PCM at the codec's sample rate."""
    return Decoder(codec).decode(data)
