"""StreamSession: dial the app's stream_url and play a call's media to it on a fixed schedule.

Frame ``n`` of a stream leaves at ``t0 + n * 20 ms / speed``, computed from the start every time,
so a late wake-up (a busy loop, a slow socket) never shifts the frames after it: they catch up.

One task (``_play``) writes every numbered frame, so ``sequence_number`` is strictly increasing on
the wire; ``AppMessages`` (emulator/media/app_messages.py) takes what the app sends back — audio into the
playout queue, marks and clears — and answers bad messages with ``error`` frames, which carry no number.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from emulator.calls.journal import redact_url
from emulator.calls.models import StreamRecord, StreamState, StreamTrack
from emulator.clock import Clock
from emulator.media import codecs, frames
from emulator.media.app_audio import MAX_MESSAGE_BYTES, AppAudioDecoder
from emulator.media.app_messages import AppMessages
from emulator.media.library import FRAME_MS, StreamMedia
from emulator.media.playout import PlayoutQueue
from emulator.media.recordings import Recording
from emulator.media.wire import FrameWriter
from emulator.scenarios import cursor as script
from emulator.timestamps import utc_now

log = logging.getLogger(__name__)

USER_AGENT = "telnyx-emulator"
# At speed 0 nothing sleeps; yield to the event loop this often so HTTP requests and other streams
# are still served while a long scenario is pushed out.
_YIELD_EVERY_TICKS = 25
# After the caller's script ends the stream stays up while the app's reply is still playing, for
# at most this long (the longest chunk Telnyx accepts is 30 s).
_TAIL_TICKS = 30_000 // FRAME_MS
# Frames websockets buffers before it stops reading the socket: with messages of up to
# MAX_MESSAGE_BYTES, a bound on the memory a flooding app can take.
_MAX_QUEUE = 4
_TRACKS = {
    StreamTrack.INBOUND: ("inbound",),
    StreamTrack.OUTBOUND: ("outbound",),
    StreamTrack.BOTH: ("inbound", "outbound"),
}
# How a stream's end reason maps to its final state: a target that hangs up on an open stream
# stopped it; a stream that never opened, whose target stopped reading, or that the emulator had to
# close because of what the target sent (target_error), failed.
FAILURE_REASONS = frozenset({"connection_failed", "send_timeout", "target_error"})


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds on one stream, enforced by a watchdog beside the frame writer (docs/robustness.md)."""

    # A target that leaves frames unread this long (the socket's buffers full, nothing drained)
    # fails the stream: without it ``ws.send`` would wait forever and the stream never end.
    send_timeout: float = 10.0
    # Wall-clock seconds before the emulator ends the stream with ``stop`` (reason max_duration).
    max_duration: float = 14_400.0


class StreamObserver(Protocol):
    def stream_connected(self, record: StreamRecord) -> None: ...

    def stream_dtmf(self, record: StreamRecord, digit: str) -> None: ...

    def stream_caller_hangup(self, record: StreamRecord, cause: str) -> None: ...

    def stream_ended(self, record: StreamRecord) -> None: ...


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class StreamSession:
    """One media stream: connect, ``connected``, ``start``, paced ``media``/``dtmf``/``mark``, ``stop``, close."""

    def __init__(
        self,
        record: StreamRecord,
        media: StreamMedia,
        clock: Clock,
        observer: StreamObserver,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        limits: StreamLimits = StreamLimits(),
    ) -> None:
        self.limits = limits
        self._stalled = False  # set by the watchdog when it gave up on a target that stopped reading
        self.record = record
        self.media = media
        self.clock = clock
        self.observer = observer
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        spec = record.spec
        info = codecs.codec_info(media.codec)
        self.frame_samples = info.frame_samples
        self.playout = PlayoutQueue(info.frame_samples, record.app_audio)
        self.decoder = AppAudioDecoder(
            spec.bidirectional_mode, spec.bidirectional_codec, spec.bidirectional_sampling_rate, media.sample_rate
        )
        record.app_audio.sample_rate = self.decoder.rate
        self.recording = Recording(spec.stream_id, media, info.frame_samples)
        self.recording.playout = self.playout
        self.recording.app_rate = self.decoder.rate
        # "self" means the app's own leg hears it; the caller (our outbound track) hears opposite/both.
        self._caller_hears_app = spec.bidirectional_target_legs in ("opposite", "both")
        self._live_encoder: codecs.Encoder | None = None
        self._marks_due: list[str] = []  # marks to echo on the next tick, filled by playout and the app
        self.app = AppMessages(record, self.decoder, self.playout, clock, self._marks_due)
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
        ws = await self._connect()
        if ws is None:
            return
        async with ws:
            if self._stop_reason is not None:
                # Stopped (hangup, streaming_stop) while the handshake was in progress: the stream never
                # starts. No frames and no streaming.started; a clean close, then streaming.stopped.
                await ws.close(1000)
                self.record.close_code = 1000
                self._finish(self._stop_reason, None)
                return
            reader = asyncio.create_task(self.app.run(ws), name=f"stream-read-{self.stream_id}")
            watchdog = asyncio.create_task(self._watch(ws), name=f"stream-watch-{self.stream_id}")
            try:
                await ws.send(frames.connected_frame(spec.auth_token))
                self.record.state = StreamState.STREAMING
                self.record.started_at = utc_now()
                self.observer.stream_connected(self.record)
                await self._send(ws, frames.start_frame(self._next_sequence(), spec, self.media.sample_rate))
                reason = await self._play(ws)
                self.app.stop_accepting()
                await self._send_marks(ws)  # marks whose audio finished on the last tick; not pending ones
                await self._send(ws, frames.stop_frame(self._next_sequence(), spec))
                await ws.close(1000)
                self.record.close_code = 1000
                self._finish(reason, None)
            except ConnectionClosed as exc:
                self._closed_early(exc)
            finally:
                reader.cancel()
                watchdog.cancel()
                await asyncio.gather(reader, watchdog, return_exceptions=True)

    async def _connect(self) -> ClientConnection | None:
        """Open the WebSocket; None (and the stream finished) when that fails."""
        spec = self.record.spec
        headers = {frames.AUTH_TOKEN_KEY: spec.auth_token} if spec.auth_token is not None else None
        is_tls = spec.stream_url.lower().startswith("wss:")
        try:
            return await connect(
                spec.stream_url,
                additional_headers=headers,
                ssl=(self.ssl_context or True) if is_tls else None,
                open_timeout=self.connect_timeout,
                compression=None,
                proxy=None,
                user_agent_header=USER_AGENT,
                max_size=MAX_MESSAGE_BYTES,
                max_queue=_MAX_QUEUE,
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            if self._stop_reason is not None:  # stopped before it could open: the stop is what happened
                self._finish(self._stop_reason, None)
            else:
                self._finish("connection_failed", f"{type(exc).__name__}: {exc}")
            return None

    def _closed_early(self, exc: ConnectionClosed) -> None:
        """The connection closed before ``stop``: say who closed it and why, from the close frames."""
        if self._stalled:
            self.record.close_code = None
            detail = f"the stream target read nothing for {self.limits.send_timeout:g} s; connection dropped"
            self._finish("send_timeout", detail)
        elif exc.sent is not None and not exc.rcvd_then_sent:
            # The emulator closed first (websockets failed the connection): a message over the size
            # limit (1009), text that is not UTF-8 (1007), a protocol error (1002), no pong (1011).
            self.record.close_code = exc.sent.code
            self._finish("target_error", f"the emulator closed the connection: code {exc.sent}")
        elif exc.rcvd is not None:
            self.record.close_code = exc.rcvd.code
            self._finish("disconnected", f"the stream target closed the connection: code {exc.rcvd}")
        else:
            self.record.close_code = None
            self._finish("disconnected", "the stream target dropped the connection without a close frame")

    async def _watch(self, ws: ClientConnection) -> None:
        """Stop the stream after ``max_duration``; drop the connection when the target stops reading.

        A target is stalled when the socket's write buffer has held data and no frame has left for
        ``send_timeout`` seconds: the kernel's buffers are full and the writer waits in ``send``.
        Aborting the transport makes that ``send`` raise, so the stream ends (send_timeout) at once.
        Checked a few times per limit, on the loop's clock: TCP buffers drain in wall time, whatever
        the media speed.
        """
        limits, record = self.limits, self.record
        loop = asyncio.get_running_loop()
        started = progress_at = loop.time()
        sent = record.frames_sent
        step = min(limits.send_timeout / 4, limits.max_duration / 4, 1.0)
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if now - started >= limits.max_duration:
                self.request_stop("max_duration")
            if record.frames_sent != sent or ws.transport.get_write_buffer_size() == 0:
                sent, progress_at = record.frames_sent, now
            elif now - progress_at >= limits.send_timeout:
                self._stalled = True
                ws.transport.abort()
                return

    async def _send(self, ws: ClientConnection, message: str) -> None:
        await ws.send(message)
        self.record.frames_sent += 1

    async def _send_marks(self, ws: ClientConnection) -> list[str]:
        due = self._marks_due.copy()
        self._marks_due.clear()  # in place: AppMessages appends to this same list
        for name in due:
            await self._send(ws, frames.mark_frame(self._next_sequence(), self.stream_id, name))
        return due

    async def _play(self, ws: ClientConnection) -> str:
        """Send every tick's frames on schedule; returns why playing ended."""
        media, record, clock = self.media, self.record, self.clock
        stream_id = record.spec.stream_id
        tracks = _TRACKS[record.spec.track]
        cursor = script.ScriptCursor(media.script)
        writer = FrameWriter(ws)
        ended_at: int | None = None  # the tick the caller's script completed
        paced = clock.speed > 0
        t0 = clock.aligned_start()
        tick = 0
        while True:
            if self._stop_reason is not None:
                return self._stop_reason
            if paced:
                deadline = clock.media_deadline(t0, tick * FRAME_MS / 1000)
                await self._sleep_until(deadline)
                if self._stop_reason is not None:
                    return self._stop_reason
                record.max_lateness = max(record.max_lateness, clock.monotonic() - deadline)
            elif tick % _YIELD_EVERY_TICKS == 0:
                await asyncio.sleep(0)
            # Marks first: the audio before them finished playing with the previous frame.
            echoed = await self._send_marks(ws) if self._marks_due else []
            app_playing = self.playout.is_playing
            step: script.Tick | None = None
            if ended_at is None:
                step = cursor.advance(app_playing, echoed)
                for digit in step.dtmf:
                    await self._send(ws, frames.dtmf_frame(self._next_sequence(), stream_id, digit, _utc_now()))
                    self.observer.stream_dtmf(record, digit)
                if step.end is not None:
                    if step.end.reason == "hangup":
                        self.observer.stream_caller_hangup(record, step.end.cause or "normal_clearing")
                        return "hangup"
                    if step.end.reason == "failed":
                        record.error = step.end.error
                        return "script_failed"
                    ended_at, step = tick, None
            if ended_at is not None and tick >= len(media.outbound):
                if not app_playing or tick - ended_at >= _TAIL_TICKS:
                    return "completed"
            played = self.playout.take()
            self._marks_due.extend(played.marks)
            outbound = self._mix_outbound(tick, played.pcm)
            batch = []
            for track in tracks:
                if track == "inbound":
                    payload = self._inbound_payload(step)
                else:
                    payload = self._outbound_payload(tick, outbound)
                batch.append(
                    frames.media_frame(self._next_sequence(), stream_id, track, tick + 1, tick * FRAME_MS, payload)
                )
            # Both tracks' frames in one write: half the syscalls with both_tracks (emulator/media/wire.py).
            if not writer.write(batch):
                await writer.send(batch)
            record.frames_sent += len(batch)
            record.media_frames_sent += len(batch)
            self.recording.add_inbound(step)
            tick += 1
            self.recording.ticks = tick

    def _mix_outbound(self, tick: int, app_pcm: np.ndarray | None) -> np.ndarray | None:
        """The outbound frame with the app's audio mixed in, or None when the app is not heard."""
        if app_pcm is None or not self._caller_hears_app:
            return None
        fs = self.frame_samples
        script = self.media.outbound_pcm[tick * fs : (tick + 1) * fs]
        mixed = app_pcm.astype(np.int32)
        mixed[: len(script)] += script
        frame = np.clip(mixed, -32768, 32767).astype(np.int16)
        self.recording.outbound_frames[tick] = frame
        return frame

    def _inbound_payload(self, step: script.Tick | None) -> str:
        media = self.media
        if step is None:  # the caller's script is over
            return media.silence
        if step.segment is None:  # the caller waits for the app
            return media.idle_payloads[step.frame]
        return media.segment_payloads[step.segment][step.frame]

    def _outbound_payload(self, tick: int, outbound: np.ndarray | None) -> str:
        if outbound is not None:
            if self._live_encoder is None:
                self._live_encoder = codecs.Encoder(self.media.codec)
            return base64.b64encode(self._live_encoder.encode(outbound)).decode()
        return self.media.outbound[tick] if tick < len(self.media.outbound) else self.media.silence

    async def _sleep_until(self, deadline: float) -> None:
        if deadline <= self.clock.monotonic():
            return
        waiter = self._waiter = self.clock.wake_at(deadline)
        try:
            await waiter
        finally:
            self._waiter = None

    def _finish(self, reason: str, error: str | None) -> None:
        record = self.record
        # Whatever ended the stream, the audio cut short is recorded as played up to here and the rest
        # counted as unplayed; pending marks are not echoed (Telnyx sends nothing after stop). Nothing
        # is accepted after that, not even a decode finishing in its thread before the reader is gone.
        self.app.stop_accepting()
        self.playout.finish()
        record.end_reason = reason
        record.ended_at = utc_now()
        error = record.error = error or record.error  # a failed script already named its problem
        record.state = StreamState.FAILED if reason in FAILURE_REASONS else StreamState.STOPPED
        url = redact_url(record.spec.stream_url)
        if error:
            # Some errors (an invalid URI) quote the URL: log them with the redacted one.
            error = error.replace(record.spec.stream_url, url)
            log.warning("stream %s to %s: %s (%s)", self.stream_id, url, reason, error)
        else:
            log.info(
                "stream %s to %s: %s after %d media frames",
                self.stream_id,
                url,
                reason,
                record.media_frames_sent,
            )
        self.observer.stream_ended(record)
