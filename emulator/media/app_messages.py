"""What the app sends back on a stream: read, checked, decoded and queued for playout.

Two tasks per stream, so heavy work never holds up the event loop (and with it every stream's frames)
and never changes what a message means:

- ``run`` takes each message off the socket as soon as it arrives and notes the time on the emulator's
  clock: the mp3 rate limit is about when messages arrive, not when they are handled;
- ``_handle_all`` handles them one at a time, in arrival order, so a mark always follows the audio
  sent before it. MP3 files, and any message over ``INLINE_BYTES``, are parsed and decoded in a worker
  thread: a 45 s MP3 takes ~0.1 s to decode, a 30 s L16 chunk tens of ms to parse and resample.

Between them sits a queue of at most ``QUEUE_MESSAGES``: when it is full the socket is not read and the
app's TCP window closes, so memory stays bounded (each message is at most ``MAX_MESSAGE_BYTES``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from emulator.calls.models import StreamRecord
from emulator.clock import Clock
from emulator.media import frames
from emulator.media.app_audio import AppAudio, AppAudioDecoder, MediaRejected
from emulator.media.playout import PlayoutQueue
from emulator.media.remote_connection import RemoteConnection

log = logging.getLogger(__name__)

# Smaller messages are handled on the loop: a 20 ms chunk should not pay for a trip to a thread.
INLINE_BYTES = 64 * 1024
QUEUE_MESSAGES = 8
# Telnyx accepts at most one mp3 media message per second (measured on the emulator's clock).
MP3_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class _Arrival:
    message: str | bytes
    at: float  # the emulator's clock when it came off the socket


class AppMessages:
    """One stream's messages from the app. Marks due for echo are appended to ``marks_due``, the
    stream's own list, which it sends on its next tick."""

    def __init__(
        self,
        record: StreamRecord,
        decoder: AppAudioDecoder,
        playout: PlayoutQueue,
        clock: Clock,
        marks_due: list[str],
    ) -> None:
        self.record = record
        self.decoder = decoder
        self.playout = playout
        self.clock = clock
        self.marks_due = marks_due
        self._queue: asyncio.Queue[_Arrival] | None = None  # made by run(): a stream that never opens needs none
        self._accepting = True
        self._last_mp3: float | None = None

    @property
    def stream_id(self) -> str:
        return self.record.spec.stream_id

    def stop_accepting(self) -> None:
        """The stream has stopped playing: what the app sends from now on is read and ignored, and what
        is still being decoded is dropped (it never counts as accepted)."""
        self._accepting = False

    async def run(self, ws: ClientConnection | RemoteConnection) -> None:
        """Read until the connection closes; handle what arrives beside it."""
        queue = self._queue = asyncio.Queue(QUEUE_MESSAGES)
        handler = asyncio.create_task(self._handle_all(ws, queue), name=f"stream-handle-{self.stream_id}")
        try:
            async for message in ws:
                self.record.frames_received += 1
                if self._accepting:
                    await queue.put(_Arrival(message, self.clock.monotonic()))
        except ConnectionClosed:
            pass  # the stream's writer reports how the connection ended
        finally:
            handler.cancel()
            await asyncio.gather(handler, return_exceptions=True)

    async def _handle_all(self, ws: ClientConnection | RemoteConnection, queue: asyncio.Queue[_Arrival]) -> None:
        while True:
            arrival = await queue.get()
            if not self._accepting:
                continue
            problem = await self._handle(arrival)
            if problem is None or not self._accepting:
                continue
            log.warning("stream %s: %s from the app: %s", self.stream_id, problem.title, problem.detail)
            self.record.errors_sent += 1
            try:
                await ws.send(frames.error_frame(self.stream_id, problem.code, problem.title, problem.detail))
            except ConnectionClosed:
                return

    async def _handle(self, arrival: _Arrival) -> frames.FrameProblem | None:
        message = arrival.message
        if len(message) > INLINE_BYTES:
            frame = await asyncio.to_thread(frames.parse_client_frame, message)
        else:
            frame = frames.parse_client_frame(message)
        if not self._accepting:  # the stream ended while a big message was parsed
            return None
        if isinstance(frame, frames.FrameProblem):
            return frame
        if isinstance(frame, frames.ClientMark):
            self.record.note_app_control("mark", frame.name)
            self.marks_due.extend(self.playout.add_mark(frame.name))
        elif isinstance(frame, frames.ClientClear):
            self.record.note_app_control("clear")
            self.marks_due.extend(self.playout.clear())
        else:
            try:
                audio = await self._decode(frame.payload)  # not audio is a 100003, whatever the rate
                self._check_rate(arrival.at)
            except MediaRejected as exc:
                return exc.problem
            if self._accepting:
                self.playout.add_audio(audio.pcm, audio.original)
        return None

    async def _decode(self, payload: bytes) -> AppAudio:
        # One decode at a time per stream (the handler awaits it), so G.722's decoder state is safe.
        if self.decoder.mode == "mp3" or len(payload) > INLINE_BYTES:
            return await asyncio.to_thread(self.decoder.decode, payload)
        return self.decoder.decode(payload)

    def _check_rate(self, arrived: float) -> None:
        if self.decoder.mode != "mp3" or self.clock.speed <= 0:
            return
        if self._last_mp3 is not None and arrived - self._last_mp3 < MP3_INTERVAL / self.clock.speed:
            detail = "Too many requests: mp3 media may be sent at most once per second."
            raise MediaRejected(frames.FrameProblem(*frames.RATE_LIMITED, detail))
        self._last_mp3 = arrived
