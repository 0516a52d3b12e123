"""A minimal WebSocket receiver in its own process, for measuring when media frames arrive.

Why not a websockets server: at 1000 streams x 2 tracks the emulator sends 100,000 frames/s, and a
websockets server spends tens of microseconds per message (parsing, unmasking the whole payload, the
message assembler, waking the handler task), which on a 2-core machine makes the receiver the
bottleneck and delays the very arrivals it measures. This receiver is an ``asyncio.Protocol`` that, in
``data_received``, reads the clock once per TCP read, splits the bytes into WebSocket frames, unmasks
only the first ~140 bytes of a media frame (enough for its track and timestamp) and appends three
numbers to arrays. Everything else (figures, JSON of non-media frames) happens after the stream closed.

Arrival times are ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC, the same clock in every
process, so they compare directly with the emulator's own deadlines: the emulator starts each stream
on a shared 1 ms grid of that clock (``RealClock.aligned_start``), and frame ``n`` of a
track is due at ``t0 + timestamp``. ``schedule_start`` recovers that ``t0`` from the arrivals.

It speaks just enough of RFC 6455 for the emulator's client: the opening handshake (no extensions,
no subprotocol), text frames, ping (answered with pong) and the close handshake. Fragmented messages
are not expected (the emulator sends each frame whole) and are counted as ``other``.
"""

from __future__ import annotations

import array
import asyncio
import base64
import hashlib
import json
import math
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
FRAME_S = 0.020
# The emulator starts streams on a grid of 1 ms (RealClock.aligned_start: 20 slots per 20 ms period at
# speed 1; before that change, 20 ms, whose points are on the 1 ms grid too).
GRID_S = 0.001
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD = 140  # bytes of a media frame unmasked: '{"event":"media","sequence_number":"…","media":{"track":"…",…'
_MEDIA = b'{"event":"media"'
_TIMESTAMP = b'"timestamp":"'


def _unmask(data: bytes | bytearray, mask: bytes) -> bytes:
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


@dataclass
class StreamLog:
    """What one connection received."""

    accepted: float
    arrived: array.array[float] = field(default_factory=lambda: array.array("d"))  # per media frame
    timestamp_ms: array.array[int] = field(default_factory=lambda: array.array("q"))  # its media.timestamp
    outbound: array.array[int] = field(default_factory=lambda: array.array("b"))  # 1: outbound track
    events: list[tuple[float, str]] = field(default_factory=list)  # (arrival, raw JSON) of non-media frames
    other: int = 0  # frames that are neither text nor control frames
    close_code: int | None = None
    closed: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "arrived": self.arrived.tobytes(),
            "timestamp_ms": self.timestamp_ms.tobytes(),
            "outbound": self.outbound.tobytes(),
            "events": self.events,
            "other": self.other,
            "close_code": self.close_code,
            "closed": self.closed,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StreamLog:
        log = cls(accepted=data["accepted"])
        log.arrived.frombytes(data["arrived"])
        log.timestamp_ms.frombytes(data["timestamp_ms"])
        log.outbound.frombytes(data["outbound"])
        log.events, log.other = data["events"], data["other"]
        log.close_code, log.closed = data["close_code"], data["closed"]
        return log


def schedule_start(log: StreamLog) -> float:
    """The stream's t0 on the emulator's grid: the grid point at or before the earliest (arrival - timestamp).

    Every frame arrives after its deadline ``t0 + timestamp``; when the least late frame of the stream
    arrived within one grid step of its deadline, flooring the earliest ``arrival - timestamp`` to the grid
    gives t0 exactly. (A stream whose every frame is later than that would be under-reported by whole
    grid steps: such a run is saturated, which its p50 and the emulator's CPU show anyway.)
    """
    earliest = min(a - t / 1000 for a, t in zip(log.arrived, log.timestamp_ms, strict=True))
    return math.floor(earliest / GRID_S + 1e-6) * GRID_S


class _Receiver(asyncio.Protocol):
    def __init__(self, owner: _Server) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.open = False
        self.log = StreamLog(accepted=time.monotonic())
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.log.closed:
            self.log.closed = time.monotonic()
        self.owner.finished(self.log)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buffer
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._handshake(bytes(buf[: end + 4]))
            del buf[: end + 4]
        log = self.log
        arrived, stamps, outbound = log.arrived, log.timestamp_ms, log.outbound
        while len(buf) >= 2:
            b1 = buf[1]
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, pos = (buf[2] << 8) | buf[3], 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, pos = int.from_bytes(buf[2:10], "big"), 10
            mask = b""
            if b1 & 0x80:
                mask = bytes(buf[pos : pos + 4])
                pos += 4
            if len(buf) < pos + length:
                return
            opcode = buf[0] & 0x0F
            if opcode == 1 and length > _HEAD:
                head = _unmask(buf[pos : pos + _HEAD], mask) if mask else bytes(buf[pos : pos + _HEAD])
                if head.startswith(_MEDIA):
                    at = head.find(_TIMESTAMP) + len(_TIMESTAMP)
                    arrived.append(now)
                    stamps.append(int(head[at : head.index(b'"', at)]))
                    outbound.append(1 if b'"track":"outbound"' in head else 0)
                    del buf[: pos + length]
                    continue
            payload = _unmask(buf[pos : pos + length], mask) if mask else bytes(buf[pos : pos + length])
            del buf[: pos + length]
            if opcode == 1:
                log.events.append((now, payload.decode()))
            elif opcode == 8:
                log.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                log.closed = now
                assert self.transport is not None
                self.transport.write(bytes([0x88, min(len(payload), 2)]) + payload[:2])
                self.transport.close()
                return
            elif opcode == 9:  # ping: answer pong with the same data (websockets pings every 20 s)
                assert self.transport is not None
                self.transport.write(bytes([0x8A, len(payload)]) + payload)
            elif opcode != 10:
                log.other += 1

    def _handshake(self, request: bytes) -> None:
        assert self.transport is not None
        key = b""
        for line in request.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.open = True


class _Server:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.logs: list[StreamLog] = []
        self.done = asyncio.Event()

    def finished(self, log: StreamLog) -> None:
        self.logs.append(log)
        if len(self.logs) >= self.expected:
            self.done.set()


async def _serve(out: Connection, expected: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    owner = _Server(expected)
    server = await loop.create_server(lambda: _Receiver(owner), HOST, 0, backlog=4096)
    out.send(server.sockets[0].getsockname()[1])
    try:
        await asyncio.wait_for(owner.done.wait(), timeout)
    except TimeoutError:
        pass
    server.close()
    out.send([log.to_wire() for log in owner.logs])


def _process(out: Connection, expected: int, timeout: float) -> None:
    asyncio.run(_serve(out, expected, timeout))
    out.close()


class ReceiverProcess:
    """The receiver in a child process: ``port`` once started; ``results()`` once ``expected`` streams closed."""

    def __init__(self, expected: int, timeout: float) -> None:
        self.timeout = timeout
        context = multiprocessing.get_context("spawn")
        self._pipe, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_process, args=(sender, expected, timeout), daemon=True)
        self._process.start()
        sender.close()
        if not self._pipe.poll(30):
            self._process.kill()
            raise RuntimeError("the receiver process did not start")
        self.port: int = self._pipe.recv()

    def results(self) -> list[StreamLog]:
        """Blocks until every expected stream closed (or the receiver's timeout), bounded."""
        if not self._pipe.poll(self.timeout + 30):
            self._process.kill()
            raise RuntimeError("the receiver process did not report")
        logs = [StreamLog.from_wire(data) for data in self._pipe.recv()]
        self._process.join(10)
        return logs

    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


def event_names(log: StreamLog) -> list[str]:
    return [str(json.loads(raw).get("event")) for _at, raw in log.events]
