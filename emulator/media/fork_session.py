"""ForkSession: a call's audio forked to UDP targets as RTP (fork_start), tick by tick.

A subscriber of the call's media like a stream (``media/call_runner.py``): at each 20 ms tick it encodes the
caller's frame (``rx``: what the call receives) and the call's outbound frame (``tx``: what it sends) with the
call's codec and sends each as one RTP packet (``media/rtp.py``) to its ``udp:ip:port`` target. UDP needs no
handshake: a target that listens nowhere loses the packets, as it would on Telnyx.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets

from emulator.media.codecs import Encoder
from emulator.media.engine import CallMedia
from emulator.media.rtp import RtpPacketizer
from emulator.media.ticks import MediaTick

log = logging.getLogger(__name__)

Target = tuple[str, int]


class _Quiet(asyncio.DatagramProtocol):
    def __init__(self, target: Target) -> None:
        self.target = target
        self.reported = False

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: said once, not per packet
        if not self.reported:
            self.reported = True
            log.info("fork to udp:%s:%d: %s (packets keep going)", *self.target, exc)


class ForkSession:
    races = False  # UDP cannot push back: at --speed 0 the packets of a call nobody streams go in real time

    def __init__(self, key: str, engine: CallMedia, codec: str, rx: Target | None, tx: Target | None) -> None:
        self.stream_id = key  # the runner knows its listeners by this name
        self.pending: object | None = None  # never anything to flush: UDP does not push back
        self.engine = engine
        self.codec = codec
        self.targets = {"rx": rx, "tx": tx}
        self.packets_sent = {"rx": 0, "tx": 0}
        self._encoders = {direction: Encoder(codec) for direction in self.targets}
        self._packetizers = {direction: RtpPacketizer(codec, secrets.randbits(32)) for direction in self.targets}
        self._transports: dict[str, asyncio.DatagramTransport] = {}
        self._closed = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for direction, target in self.targets.items():
            if target is not None:
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Quiet, target), remote_addr=target
                )
                self._transports[direction] = transport

    def deliver(self, tick: MediaTick, lateness: float) -> bool:
        if self._closed:
            return False
        if tick.end is not None:  # the caller hung up in this tick: no media
            return True
        for direction, transport in self._transports.items():
            engine = self.engine
            pcm = engine.inbound_frame(tick) if direction == "rx" else engine.outbound_frame(tick)
            payload = self._encoders[direction].encode(pcm)
            transport.sendto(self._packetizers[direction].packet(payload))
            self.packets_sent[direction] += 1
        return True

    async def flush(self) -> bool:
        return not self._closed

    def close(self) -> None:
        self._closed = True
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
