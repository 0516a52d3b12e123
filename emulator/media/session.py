"""StreamSession: dial the app's stream_url and stream the call's media to it, tick by tick.

A stream is a subscriber of its call's media (``media/call_runner.py``): once its WebSocket is open and
``connected`` and ``start`` are sent, every 20 ms tick of the call is handed to ``deliver``, which encodes it
and writes it. A stream started mid-call hears the call from that tick; ``chunk`` and ``timestamp`` count
from the stream's own first frame. Each stream keeps one encoder per track for its whole life, so a stateful
codec (G.722) is decoded continuously by the app; stateless codecs use the scenario's pre-encoded payloads.

``AppMessages`` (``media/app_messages.py``) takes what the app sends back (audio, marks, clears) and answers
bad messages with ``error`` frames. With ``--media-workers`` the WebSocket lives in a worker (``workers.py``).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from typing import Protocol

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from emulator.calls.journal import redact_url
from emulator.calls.models import FAILURE_REASONS, StreamEndReason, StreamRecord, StreamState, StreamTrack
from emulator.clock import Clock
from emulator.faults.rules import FaultBook
from emulator.media import codecs, frames
from emulator.media.app_audio import MAX_MESSAGE_BYTES, AppAudioDecoder
from emulator.media.app_messages import AppMessages
from emulator.media.library import StreamMedia
from emulator.media.playout import PlayoutQueue
from emulator.media.recordings import Recording
from emulator.media.remote_connection import RemoteConnectFailed, RemoteConnection, WorkerLost
from emulator.media.stream_faults import MediaFaults
from emulator.media.stream_watch import StreamLimits, watch
from emulator.media.ticks import AppAudio, MediaTick
from emulator.media.wire import FrameWriter, dial
from emulator.media.workers import MediaWorkers
from emulator.scenarios.cursor import Tick
from emulator.scenarios.synth import resample, to_int16
from emulator.timestamps import utc_now
from emulator.timing import FRAME_MS, LATE_TICK_S
from emulator.tls import describe_connect_error

log = logging.getLogger(__name__)

Connection = ClientConnection | RemoteConnection  # here, or in a media worker (media/remote_connection.py)
_TRACKS = {
    StreamTrack.INBOUND: ("inbound",),
    StreamTrack.OUTBOUND: ("outbound",),
    StreamTrack.BOTH: ("inbound", "outbound"),
}


class StreamObserver(Protocol):
    def stream_connected(self, session: StreamSession) -> None: ...

    def stream_ended(self, session: StreamSession) -> None: ...


class StreamSession:
    """One stream: connect, ``connected``, ``start``, the call's ticks as ``media``/``dtmf``/``mark``, ``stop``."""

    races = True  # at --speed 0 the call's media goes as fast as this stream reads it

    def __init__(
        self,
        record: StreamRecord,
        media: StreamMedia,
        call_media: StreamMedia,
        clock: Clock,
        observer: StreamObserver,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        limits: StreamLimits | None = None,
        faults: FaultBook | None = None,
        workers: MediaWorkers | None = None,
    ) -> None:
        self.limits = limits or StreamLimits()
        self.workers = workers  # --media-workers: the WebSocket lives in a worker process
        self._faults = MediaFaults(faults, record) if faults is not None else None  # docs/faults.md
        self._stalled = False  # set by the watchdog when it gave up on a target that stopped reading
        self.record = record
        self.media = media  # the scenario at this stream's codec and rate
        self.clock = clock
        self.observer = observer
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        spec = record.spec
        self.frame_samples = media.frame_samples
        self._call_rate = call_media.sample_rate  # the rate of the call's mixed audio and of the app's playout
        self.decoder = AppAudioDecoder(
            spec.bidirectional_mode, spec.bidirectional_codec, spec.bidirectional_sampling_rate, self._call_rate
        )
        record.app_audio.sample_rate = self.decoder.rate
        # "self" means the app's own leg hears it; the caller (our outbound track) hears opposite/both.
        heard = spec.bidirectional_target_legs in ("opposite", "both")
        self.app_audio = AppAudio(PlayoutQueue(call_media.frame_samples, record.app_audio), heard)
        self.playout = self.app_audio.playout
        self.recording = Recording(spec.stream_id, media, media.frame_samples)
        self.recording.playout = self.playout
        self.recording.app_rate = self.decoder.rate
        self.recording.call_rate = self._call_rate
        self.app = AppMessages(record, self.decoder, self.playout, clock, self.app_audio.marks_due)
        self._tracks = _TRACKS[spec.track]
        # One encoder per track for the stream's life: G.722's ADPCM state must run on unbroken.
        self._stateful = codecs.codec_info(media.codec).codec is codecs.Codec.G722
        self._encoders: dict[str, codecs.Encoder] = {}  # made on first use: most streams never encode live
        self._stop_reason: StreamEndReason | None = None
        self._done: asyncio.Future[None] | None = None
        self._writer: FrameWriter | RemoteConnection | None = None
        self._writing: asyncio.Event | None = None  # clear while a slow write is awaited
        self._sequence = 0
        self._ticks = 0  # media ticks sent: chunk and timestamp count from here
        self.pending: list[str] | None = None  # a tick's frames waiting for the socket (see deliver)

    @property
    def stream_id(self) -> str:
        return self.record.spec.stream_id

    def request_stop(self, reason: StreamEndReason) -> None:
        """End the stream with a ``stop`` frame as soon as it can (idempotent: the first reason wins)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

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
                # Stopped while the handshake was in progress: no frames, no streaming.started; a clean close.
                await ws.close(1000)
                self.record.close_code = 1000
                self._finish(self._stop_reason, None)
                return
            reader = asyncio.create_task(self.app.run(ws), name=f"stream-read-{self.stream_id}")
            reader.add_done_callback(lambda _: self._connection_lost(ws))
            watchdog = asyncio.create_task(self._watch(ws), name=f"stream-watch-{self.stream_id}")
            try:
                await ws.send(frames.connected_frame(spec.auth_token))
                self.record.state = StreamState.STREAMING
                self.record.started_at = utc_now()
                await self._send(ws, frames.start_frame(self._next_sequence(), spec, self.media.sample_rate))
                self._writer = ws if isinstance(ws, RemoteConnection) else FrameWriter(ws)
                self._writing = asyncio.Event()
                self._writing.set()
                self._done = asyncio.get_running_loop().create_future()
                if self._stop_reason is not None:
                    self._done.set_result(None)
                # Subscribed to the call's ticks from here on; deliver() writes them.
                self.observer.stream_connected(self)
                try:
                    await self._done
                finally:
                    self._done = None
                    await self._writing.wait()  # a tick still being written goes out whole before stop
                for late in self._faults.leftovers() if self._faults is not None else ():
                    await self._send(ws, late)  # frames a fault held back go out late, not never
                reason = self._stop_reason or StreamEndReason.STOPPED
                self.app.stop_accepting()
                await self._send_marks(ws, self.app_audio.marks_due)  # their audio finished on the last tick
                await self._send(ws, frames.stop_frame(self._next_sequence(), spec))
                closing = time.monotonic()
                await ws.close(1000)  # waits send_timeout at most for the target's answer
                # No answer in all that time: the kernel took the end of the stream, and nobody read it.
                unread = ws.protocol.close_rcvd is None and time.monotonic() - closing >= self.limits.send_timeout
                if isinstance(ws.protocol.close_exc, WorkerLost):  # it died with the stop frame on its way
                    raise ws.protocol.close_exc
                self.record.close_code = None if unread else 1000
                self._finish(*((StreamEndReason.SEND_TIMEOUT, self._stall_detail()) if unread else (reason, None)))
            except ConnectionClosed as exc:
                self._closed_early(exc)
            finally:
                reader.cancel()
                watchdog.cancel()
                await asyncio.gather(reader, watchdog, return_exceptions=True)

    def _connection_lost(self, ws: Connection) -> None:
        """The reader saw the connection close while the stream waits for ticks (a call not yet answered,
        a silent caller): end it now rather than at a next write that may never come."""
        done = self._done
        if done is not None and not done.done() and ws.protocol.close_exc is not None:
            done.set_exception(ws.protocol.close_exc)

    def deliver(self, tick: MediaTick, lateness: float) -> bool:
        """Write one tick of the call: marks due, DTMF, then this stream's tracks (unless the caller is done).

        Returns False when the stream hears no more (it is stopping). The usual tick is written at once; when
        earlier frames still fill the socket's buffer the batch is kept as ``pending`` and the runner awaits
        ``flush``. Called by the call's runner only, one tick at a time: no coroutine per tick."""
        writer, done = self._writer, self._done
        if writer is None or done is None or done.done():
            return False
        record = self.record
        if lateness > record.max_lateness:
            record.max_lateness = lateness
        n = self._ticks
        batch: list[str] = []
        if tick.marks:
            marks = tick.marks.get(self.stream_id)
            if marks:
                batch += [frames.mark_frame(self._next_sequence(), self.stream_id, name) for name in marks]
        for digit in tick.dtmf:
            batch.append(frames.dtmf_frame(self._next_sequence(), self.stream_id, digit, utc_now()))
        media_frames = 0
        if tick.end is None:  # a tick of the call's media; the one the caller hangs up in carries none
            record.ticks += 1
            if lateness >= LATE_TICK_S:
                record.late_ticks += 1
            for track in self._tracks:
                payload = self._inbound_payload(tick.inbound) if track == "inbound" else self._outbound_payload(tick)
                batch.append(
                    frames.media_frame(self._next_sequence(), self.stream_id, track, n + 1, n * FRAME_MS, payload)
                )
            media_frames = len(self._tracks)
            self.recording.add_tick(tick)
            self._ticks = n + 1
        record.media_frames_sent += media_frames
        faults = self._faults
        if faults is not None and (faults.holding or faults.book.has("media")):  # the usual: no media rule
            batch = faults.shape(batch, self._tracks if media_frames else (), n, self._sequence)
            if faults.end is not None:  # a stop is streaming_stop's (the call stays up); a drop sends no close frame
                self._sequence -= media_frames  # not sent: the stop frame takes the first of their numbers
                if faults.end.kind == "stop":
                    self.request_stop(StreamEndReason.STOPPED)
                else:
                    writer.ws.transport.abort()
                    done.set_exception(ConnectionClosed(None, None))  # run() ends it as a lost connection
                return False
        if not batch:
            return True
        if writer.write(batch):
            record.frames_sent += len(batch)
        else:
            self.pending = batch
        return True

    async def flush(self) -> bool:
        """Send the batch ``deliver`` could not write at once, waiting for the target to read (flow control).
        False when the connection broke: the stream's ``run`` then reports how."""
        batch, self.pending = self.pending, None
        writer, done = self._writer, self._done
        if batch is None or writer is None or done is None:
            return done is not None
        assert self._writing is not None
        self._writing.clear()
        try:
            await writer.send(batch)
        except ConnectionClosed as exc:
            if not done.done():
                done.set_exception(exc)
            return False
        finally:
            self._writing.set()
        self.record.frames_sent += len(batch)
        return True

    def _inbound_payload(self, step: Tick | None) -> str:
        media = self.media
        if self._stateful:
            pcm = media.script.frame(step) if step is not None else None
            return self._encode("inbound", pcm)
        if step is None:  # the caller's script is over
            return media.silence
        if step.segment is None:  # the caller waits for the app
            return media.idle_payloads[step.frame % len(media.idle_payloads)]
        payloads = media.segment_payloads[step.segment]
        # A segment can be a frame shorter at this rate than at the call's: its end is silence.
        return payloads[step.frame] if step.frame < len(payloads) else media.silence

    def _outbound_payload(self, tick: MediaTick) -> str:
        media, n = self.media, tick.outbound
        if tick.mixed is not None:
            pcm = tick.mixed
            if self._call_rate != media.sample_rate:
                pcm = self._resampled(pcm)
            self.recording.outbound_frames[self._ticks] = pcm
            return self._encode("outbound", pcm)
        if self._stateful:
            fs = self.frame_samples
            return self._encode("outbound", media.outbound_pcm[n * fs : (n + 1) * fs])
        return media.outbound[n] if n < len(media.outbound) else media.silence

    def _resampled(self, pcm: np.ndarray) -> np.ndarray:
        out = to_int16(resample(pcm.astype(np.float32) / 32768.0, self._call_rate, self.media.sample_rate))
        fs = self.frame_samples
        return out[:fs] if len(out) >= fs else np.concatenate([out, np.zeros(fs - len(out), dtype=np.int16)])

    def _encode(self, track: str, pcm: np.ndarray | None) -> str:
        fs = self.frame_samples
        if pcm is None or len(pcm) < fs:
            frame = np.zeros(fs, dtype=np.int16)
            if pcm is not None:
                frame[: len(pcm)] = pcm
            pcm = frame
        encoder = self._encoders.get(track)
        if encoder is None:
            encoder = self._encoders[track] = codecs.Encoder(self.media.codec)
        return base64.b64encode(encoder.encode(pcm)).decode()

    async def _connect(self) -> Connection | None:
        """Open the WebSocket (here, or in a media worker); None (and the stream finished) when that fails."""
        spec, url = self.record.spec, self.record.spec.stream_url
        headers = {frames.AUTH_TOKEN_KEY: spec.auth_token} if spec.auth_token is not None else None
        timeouts = {"open_timeout": self.connect_timeout, "close_timeout": self.limits.send_timeout}
        try:
            if self.workers is not None:
                return await self.workers.connect(self.stream_id, url, headers, **timeouts)
            return await dial(
                url, headers=headers, ssl_context=self.ssl_context, max_size=MAX_MESSAGE_BYTES, **timeouts
            )
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError, RemoteConnectFailed) as exc:
            if self._stop_reason is not None:  # stopped before it could open: the stop is what happened
                self._finish(self._stop_reason, None)
            elif isinstance(exc, RemoteConnectFailed):
                self._finish(exc.reason, exc.detail)
            else:
                self._finish(StreamEndReason.CONNECTION_FAILED, describe_connect_error(exc, url[:4].lower() == "wss:"))
            return None

    def _stall_detail(self) -> str:
        return f"the stream target read nothing for {self.limits.send_timeout:g} s; connection dropped"

    def _closed_early(self, exc: ConnectionClosed) -> None:
        """The connection closed before ``stop``: say who closed it and why, from the close frames."""
        if self._stalled:
            self.record.close_code = None
            self._finish(StreamEndReason.SEND_TIMEOUT, self._stall_detail())
        elif isinstance(exc, WorkerLost):
            self.record.close_code = None
            self._finish(StreamEndReason.MEDIA_WORKER_LOST, exc.detail)
        elif exc.sent is not None and not exc.rcvd_then_sent:
            # The emulator closed first (websockets failed the connection): a message over the size
            # limit (1009), text that is not UTF-8 (1007), a protocol error (1002), no pong (1011).
            self.record.close_code = exc.sent.code
            self._finish(StreamEndReason.TARGET_ERROR, f"the emulator closed the connection: code {exc.sent}")
        elif exc.rcvd is not None:
            self.record.close_code = exc.rcvd.code
            self._finish(StreamEndReason.DISCONNECTED, f"the stream target closed the connection: code {exc.rcvd}")
        else:
            self.record.close_code = None
            dropped = self._faults.dropped if self._faults is not None else None  # by a drop fault
            detail = dropped or "the stream target dropped the connection without a close frame"
            self._finish(StreamEndReason.DISCONNECTED, detail)

    async def _watch(self, ws: Connection) -> None:
        """The stream's limits (``media/stream_watch.py``); a stalled target's connection is dropped."""
        if await watch(ws.transport, self.limits, self.record, lambda: self.request_stop(StreamEndReason.MAX_DURATION)):
            self._stalled = True
            ws.transport.abort()  # the writer's send raises, so the stream ends (send_timeout) at once
            if self._done is not None and not self._done.done():  # nothing is being written: wake run()
                self._done.set_exception(ConnectionClosed(None, None))

    async def _send(self, ws: Connection, message: str) -> None:
        await ws.send(message)
        self.record.frames_sent += 1

    async def _send_marks(self, ws: Connection, due: list[str]) -> None:
        names = due.copy()
        due.clear()  # in place: AppMessages appends to this same list
        for name in names:
            await self._send(ws, frames.mark_frame(self._next_sequence(), self.stream_id, name))

    def _finish(self, reason: StreamEndReason, error: str | None) -> None:
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
        self.observer.stream_ended(self)
