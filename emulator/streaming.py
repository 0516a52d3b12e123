"""StreamSession: dial the app's stream_url and play a call's media to it on a fixed schedule.

Frame ``n`` of a stream leaves at ``t0 + n * 20 ms / speed``, computed from the start every time,
so a late wake-up (a busy loop, a slow socket) never shifts the frames after it: they catch up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import UTC, datetime
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from emulator import frames
from emulator.clock import Clock
from emulator.media import FRAME_MS, StreamMedia
from emulator.models import StreamRecord, StreamState, StreamTrack

log = logging.getLogger(__name__)

USER_AGENT = "telnyx-emulator"
# At speed 0 nothing sleeps; yield to the event loop this often so HTTP requests and other streams
# are still served while a long scenario is pushed out.
_YIELD_EVERY_TICKS = 25
_TRACKS = {
    StreamTrack.INBOUND: ("inbound",),
    StreamTrack.OUTBOUND: ("outbound",),
    StreamTrack.BOTH: ("inbound", "outbound"),
}
# How a stream's end reason maps to its final state: a target that hangs up on an open stream
# stopped it; only a stream that never opened failed.
FAILURE_REASONS = frozenset({"connection_failed"})


class StreamObserver(Protocol):
    def stream_connected(self, record: StreamRecord) -> None: ...

    def stream_dtmf(self, record: StreamRecord, digit: str) -> None: ...

    def stream_ended(self, record: StreamRecord) -> None: ...


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class StreamSession:
    """One media stream: connect, ``connected``, ``start``, paced ``media``/``dtmf``, ``stop``, close 1000."""

    def __init__(
        self,
        record: StreamRecord,
        media: StreamMedia,
        clock: Clock,
        observer: StreamObserver,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.record = record
        self.media = media
        self.clock = clock
        self.observer = observer
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self._stop_reason: str | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._sequence = 0

    @property
    def stream_id(self) -> str:
        return self.record.spec.stream_id

    def request_stop(self, reason: str) -> None:
        """End the stream at the next tick with a ``stop`` frame (idempotent: the first reason wins)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    async def run(self) -> None:
        spec = self.record.spec
        headers = {frames.AUTH_TOKEN_KEY: spec.auth_token} if spec.auth_token is not None else None
        is_tls = spec.stream_url.lower().startswith("wss:")
        try:
            ws = await connect(
                spec.stream_url,
                additional_headers=headers,
                ssl=(self.ssl_context or True) if is_tls else None,
                open_timeout=self.connect_timeout,
                compression=None,
                proxy=None,
                user_agent_header=USER_AGENT,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            self._finish("connection_failed", f"{type(exc).__name__}: {exc}")
            return
        async with ws:
            reader = asyncio.create_task(self._read(ws), name=f"stream-read-{self.stream_id}")
            try:
                await ws.send(frames.connected_frame(spec.auth_token))
                self.record.state = StreamState.STREAMING
                self.observer.stream_connected(self.record)
                await self._send(ws, frames.start_frame(self._next_sequence(), spec, self.media.sample_rate))
                reason = await self._play(ws)
                await self._send(ws, frames.stop_frame(self._next_sequence(), spec))
                await ws.close(1000)
                self.record.close_code = 1000
                self._finish(reason, None)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                self.record.close_code = code
                self._finish("disconnected", f"the stream target closed the connection (code {code})")
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def _send(self, ws: ClientConnection, message: str) -> None:
        await ws.send(message)
        self.record.frames_sent += 1

    async def _play(self, ws: ClientConnection) -> str:
        """Send every tick's frames on schedule; returns why playing ended."""
        media, record, clock = self.media, self.record, self.clock
        stream_id = record.spec.stream_id
        tracks = [(name, media.inbound if name == "inbound" else media.outbound) for name in _TRACKS[record.spec.track]]
        dtmf = media.dtmf
        paced = clock.speed > 0
        t0 = clock.monotonic()
        for tick in range(media.frames + 1):
            if self._stop_reason is not None:
                return self._stop_reason
            deadline = clock.media_deadline(t0, tick * FRAME_MS / 1000)
            if paced:
                await self._sleep_until(deadline)
                if self._stop_reason is not None:
                    return self._stop_reason
                lateness = clock.monotonic() - deadline
                if lateness > record.max_lateness:
                    record.max_lateness = lateness
            elif tick % _YIELD_EVERY_TICKS == 0:
                await asyncio.sleep(0)
            for digit in dtmf.get(tick, ()):
                await self._send(ws, frames.dtmf_frame(self._next_sequence(), stream_id, digit, _utc_now()))
                self.observer.stream_dtmf(record, digit)
            if tick == media.frames:
                break  # the last tick only reports DTMF that ended with the audio
            for name, payloads in tracks:
                frame = frames.media_frame(
                    self._next_sequence(), stream_id, name, tick + 1, tick * FRAME_MS, payloads[tick]
                )
                await ws.send(frame)
                record.frames_sent += 1
                record.media_frames_sent += 1
        return "completed"

    async def _sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            return
        waiter = self._waiter = loop.create_future()
        handle = loop.call_at(deadline, _release, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None

    async def _read(self, ws: ClientConnection) -> None:
        # Bidirectional media is handled elsewhere; reading keeps the connection's buffers drained
        # and notices a target that closes the socket.
        async for _message in ws:
            self.record.frames_received += 1

    def _finish(self, reason: str, error: str | None) -> None:
        record = self.record
        record.end_reason = reason
        record.error = error
        record.state = StreamState.FAILED if reason in FAILURE_REASONS else StreamState.STOPPED
        if error:
            log.warning("stream %s to %s: %s (%s)", self.stream_id, record.spec.stream_url, reason, error)
        else:
            log.info(
                "stream %s to %s: %s after %d media frames",
                self.stream_id,
                record.spec.stream_url,
                reason,
                record.media_frames_sent,
            )
        self.observer.stream_ended(record)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
