"""A minimal WebSocket receiver in its own process, for measuring when media frames arrive.

Why not a websockets server: at 1000 streams x 2 tracks the emulator sends 100,000 frames/s, and a
websockets server spends tens of microseconds per message (parsing, unmasking the whole payload, the
message assembler, waking the handler task), which on a 2-core machine makes the receiver the
bottleneck and delays the very arrivals it measures.

What it measures: a frame's arrival is ``time.monotonic()`` taken at the start of the
``data_received`` call (one TCP read) that delivered the frame's last byte. Arrival times are
CLOCK_MONOTONIC on Linux, the same clock in every process, so they compare directly with the
emulator's own deadlines: the emulator starts each stream on a shared 1 ms grid of that clock
(``RealClock.aligned_start``), and frame ``n`` of a track is due at ``t0 + timestamp``.
``schedule_start`` recovers that ``t0`` from the arrivals.

How it keeps its own cost out of the measurement: ``data_received`` only takes the clock and appends
the time and the bytes (an ``array('d')`` and a list), so a read costs a few hundred nanoseconds of
Python and the next read is not held up. Runs on uvloop when it is importable (``EVENT_LOOP``), whose
read path (epoll, recv, the callback) is C instead of asyncio's Python selector loop. At 200 streams
(20,000 frames/s) on a 2-vCPU VM that took the receiver from ~79 % of a core (every frame parsed in
``data_received``, asyncio loop) to ~26 %, about half of it kernel time for the loopback reads,
which no receiver avoids without reading less often (and so timing arrivals coarser). Two things must
still happen while the stream runs, and a timer per connection (every ``SCAN_S``, staggered by
when each connection opened) does them: it appends the new reads to the connection's buffer with
each read's end offset, then walks the new frame headers (a few byte reads per frame, no unmasking)
to answer a ping with a pong (websockets closes the connection when no pong comes within 20 s) and
a close with a close (so the emulator gets its clean 1000 without waiting for its close timeout).
A timer rather than a header check in every read: the walk is then one tight loop per ~10 frames
instead of per-read bookkeeping of partial headers, and a 0.1 s delay does not matter to either reply.

Everything else (unmasking the first ~140 bytes of each media frame for its track and timestamp,
decoding the other frames) happens once every expected stream has closed, so it never competes
with the emulator while frames are in flight. Each frame's arrival is the time of the first read
whose end offset is past the frame's last byte: exactly what timing each read as it came gives.
The price is memory: the raw frames are kept until then, ~0.4 KB per media frame (~0.8 GB for 1000
streams x 2 tracks x 20 s); each connection's buffer is dropped as soon as it is parsed.

It speaks just enough of RFC 6455 for the emulator's client: the opening handshake (no extensions,
no subprotocol), text frames, ping (answered with pong) and the close handshake. Fragmented messages
are not expected (the emulator sends each frame whole) and are counted as ``other``; frames after a
close frame are ignored.
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
from typing import Any, cast

try:
    import uvloop

    EVENT_LOOP = "uvloop"
except ImportError:  # uvloop is a dependency except on Windows and PyPy
    EVENT_LOOP = "asyncio"

HOST = "127.0.0.1"
FRAME_S = 0.020
# The emulator starts streams on a grid of 1 ms (RealClock.aligned_start: 20 slots per 20 ms period at
# speed 1; before that change, 20 ms, whose points are on the 1 ms grid too).
GRID_S = 0.001
SCAN_S = 0.1  # how often each connection's new frames are walked for pings and a close
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD = 140  # bytes of a media frame unmasked: '{"event":"media","sequence_number":"…","media":{"track":"…",…'
_MEDIA = b'{"event":"media"'
_TIMESTAMP = b'"timestamp":"'
_now = time.monotonic


def _unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    n = len(data)
    key = (bytes(mask) * (n // 4 + 1))[:n]
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


# A frame found by _walk: (opcode, plus 0x80 when masked; payload start; payload end), offsets in the buffer.
Frame = tuple[int, int, int]


def _walk(data: bytearray, pos: int, frames: list[Frame], everything: bool) -> int:
    """Walks the whole frames from the frame boundary ``pos``; returns the boundary after the last one.

    Appends every frame to ``frames`` or, unless ``everything``, only control frames (opcodes 8-15:
    bit 3 of the first byte). Reads the header bytes only; nothing is unmasked or copied.
    """
    size = len(data)
    while pos + 2 <= size:
        b0, b1 = data[pos], data[pos + 1]
        length = b1 & 0x7F
        start = pos + 2
        if length == 126:
            if start + 2 > size:
                break
            length = (data[start] << 8) | data[start + 1]
            start += 2
        elif length == 127:
            if start + 8 > size:
                break
            length = int.from_bytes(data[start : start + 8], "big")
            start += 8
        if b1 & 0x80:
            start += 4  # the masking key
        end = start + length
        if end > size:
            break
        if everything or b0 & 0x08:
            frames.append(((b0 & 0x0F) | (b1 & 0x80), start, end))
        pos = end
    return pos


def _payload(data: bytearray, kind: int, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of a frame's payload, unmasked (the key is the 4 bytes before the payload)."""
    if kind & 0x80:
        return _unmask(data[start:end], data[start - 4 : start])
    return bytes(data[start:end])


class _Receiver(asyncio.Protocol):
    def __init__(self, owner: _Server) -> None:
        self.owner = owner
        self.accepted = _now()
        self.request = bytearray()  # the HTTP upgrade request, until it is whole
        self.open = False
        self.times = array.array("d")  # per read after the handshake: _now() when it was delivered
        self.reads: list[bytes] = []  # those reads not yet appended to data
        self.data = bytearray()  # the WebSocket bytes, read after read
        self.ends = array.array("q")  # per read: its end offset in data
        self.scanned = 0  # data is walked for pings and a close up to this frame boundary
        self.lost_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.loop = asyncio.get_running_loop()
        self.timer = self.loop.call_later(SCAN_S, self._scan)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = _now()
        if self.timer is not None:
            self.timer.cancel()
        self._merge()
        self.owner.finished(self)

    def data_received(self, data: bytes) -> None:
        # The hot path: one clock read and two appends. Frames are found later (_scan, _parse).
        now = _now()
        if self.open:
            self.times.append(now)
            self.reads.append(data)
        else:
            self._handshake(now, data)

    def _handshake(self, now: float, data: bytes) -> None:
        assert self.transport is not None
        self.request += data
        end = self.request.find(b"\r\n\r\n")
        if end < 0:
            return
        key = b""
        for line in self.request[:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = bytes(value.strip())
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self.open = True
        rest = bytes(self.request[end + 4 :])  # frames in the same read as the request (websockets waits)
        self.request = bytearray()
        if rest:
            self.times.append(now)
            self.reads.append(rest)

    def _merge(self) -> None:
        """Appends the reads since the last merge to ``data``, noting where each ended."""
        data, ends = self.data, self.ends
        for chunk in self.reads:
            data += chunk
            ends.append(len(data))
        self.reads.clear()

    def _scan(self) -> None:
        """Every SCAN_S: answers the pings and the close among the frames that arrived since the last scan."""
        assert self.transport is not None and self.loop is not None
        self._merge()
        control: list[Frame] = []
        self.scanned = _walk(self.data, self.scanned, control, everything=False)
        for kind, start, end in control:
            opcode = kind & 0x0F
            if opcode == 9:  # ping: pong with the same data (websockets pings every 20 s)
                payload = _payload(self.data, kind, start, end)
                self.transport.write(bytes([0x8A, len(payload)]) + payload)
            elif opcode == 8:  # close: echo its code, then close; connection_lost follows
                payload = _payload(self.data, kind, start, end)
                self.transport.write(bytes([0x88, min(len(payload), 2)]) + payload[:2])
                self.transport.close()
                return
        self.timer = self.loop.call_later(SCAN_S, self._scan)


def _parse(rx: _Receiver) -> StreamLog:
    """What a closed connection received, from its bytes and each read's time and end offset."""
    log = StreamLog(accepted=rx.accepted)
    data, ends, times = rx.data, rx.ends, rx.times
    frames: list[Frame] = []
    _walk(data, 0, frames, everything=True)
    arrived, stamps, outbound = log.arrived, log.timestamp_ms, log.outbound
    read = 0
    for kind, start, end in frames:
        while ends[read] < end:  # the first read that ends past the frame's last byte delivered it
            read += 1
        at = times[read]
        opcode = kind & 0x0F
        if opcode == 1 and end - start > _HEAD:
            head = _payload(data, kind, start, start + _HEAD)
            if head.startswith(_MEDIA):
                pos = head.find(_TIMESTAMP) + len(_TIMESTAMP)
                arrived.append(at)
                stamps.append(int(head[pos : head.index(b'"', pos)]))
                outbound.append(1 if b'"track":"outbound"' in head else 0)
                continue
        payload = _payload(data, kind, start, end)
        if opcode == 1:
            log.events.append((at, payload.decode()))
        elif opcode == 8:
            log.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            log.closed = at
            break
        elif opcode not in (9, 10):
            log.other += 1
    if not log.closed:
        log.closed = rx.lost_at
    return log


class _Server:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.closed: list[_Receiver] = []
        self.done = asyncio.Event()

    def finished(self, receiver: _Receiver) -> None:
        self.closed.append(receiver)
        if len(self.closed) >= self.expected:
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
    logs = []
    for receiver in owner.closed:
        logs.append(_parse(receiver).to_wire())
        receiver.data = bytearray()  # the raw frames are no longer needed: free them as we go
    out.send(logs)


def _process(out: Connection, expected: int, timeout: float) -> None:
    if EVENT_LOOP == "uvloop":
        uvloop.run(_serve(out, expected, timeout))
    else:
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
