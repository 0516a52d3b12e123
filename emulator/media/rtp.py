"""RTP packets (RFC 3550) for forking a call's audio: a fixed 12-byte header, one 20 ms frame per packet. Pure.

Payload types and clock rates as RFC 3551 assigns them: PCMU 0 and PCMA 8 at 8 kHz; G722 9, whose RTP clock
runs at 8 kHz although it samples at 16 kHz (RFC 3551 §4.5.2); L16 has no static type at 16 kHz mono, so it
goes as dynamic type 96 with a 16 kHz clock::

    rtp = RtpPacketizer("PCMU", ssrc=0x1234ABCD)
    packet = rtp.packet(payload)   # b"\\x80\\x00\\x00\\x00..." then the next sequence number and timestamp
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from emulator.timing import FRAME_MS

# codec -> (payload type, RTP clock rate)
PAYLOAD_TYPES: dict[str, tuple[int, int]] = {
    "PCMU": (0, 8000),
    "PCMA": (8, 8000),
    "G722": (9, 8000),
    "L16": (96, 16000),
}
_HEADER = struct.Struct("!BBHII")
VERSION_2 = 0x80


class RtpPacket(NamedTuple):
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


class RtpPacketizer:
    """Numbers the packets of one direction: sequence +1 and timestamp +one frame of the clock per packet."""

    def __init__(self, codec: str, ssrc: int, sequence: int = 0, timestamp: int = 0) -> None:
        self.payload_type, clock_rate = PAYLOAD_TYPES[codec]
        self.ssrc = ssrc & 0xFFFFFFFF
        self.sequence = sequence & 0xFFFF
        self.timestamp = timestamp & 0xFFFFFFFF
        self.step = clock_rate * FRAME_MS // 1000
        self._first = True

    def packet(self, payload: bytes) -> bytes:
        # The marker bit flags the first packet of the talk spurt: here, of the fork.
        marker = 0x80 if self._first else 0
        self._first = False
        header = _HEADER.pack(VERSION_2, marker | self.payload_type, self.sequence, self.timestamp, self.ssrc)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.step) & 0xFFFFFFFF
        return header + payload


def parse(packet: bytes) -> RtpPacket:
    """A packet's header fields and payload (no CSRCs, no extension: what ``RtpPacketizer`` makes)."""
    if len(packet) < _HEADER.size:
        raise ValueError(f"an RTP packet has at least {_HEADER.size} bytes, got {len(packet)}")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(packet)
    if first >> 6 != 2:
        raise ValueError(f"RTP version {first >> 6}, expected 2")
    return RtpPacket(second & 0x7F, bool(second & 0x80), sequence, timestamp, ssrc, packet[_HEADER.size :])
