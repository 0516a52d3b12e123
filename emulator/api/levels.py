"""What a call sounds like, for people who look at it (the dashboard, docs/dashboard.md):

- ``GET /_emulator/calls/{call_control_id}/levels``: the live peaks of its streams' inbound and outbound tracks,
  20 ms per value, pushed as server-sent events while the call runs;
- ``GET /_emulator/streams/{stream_id}/markers``: what the caller did and when the app sent ``mark`` and
  ``clear``, in ms of the stream's media, to mark on its recording's waveform.

The level stream reads the streams' recordings (``media/recordings.py``) every ``INTERVAL``: nothing runs on
the media path for it, and it costs nothing while nobody watches.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulator.api.admin import find_stream, own_call
from emulator.api.events import PING, PING_INTERVAL
from emulator.api.routes import emulator_state, namespace_of
from emulator.calls.feed import Feed
from emulator.calls.models import Call
from emulator.media.recordings import Recording, RecordingStore
from emulator.timing import FRAME_MS

INTERVAL = 0.1  # seconds between two level messages of a stream: 5 frames at --speed 1
# At most this many frames per message, and what a new reader gets of a stream already running: the latest 10 s.
MAX_FRAMES = 500


def level_message(stream_id: str, recording: Recording, start: int, stop: int) -> tuple[bytes, int]:
    """The ``level`` message for ticks ``start`` to ``stop`` (at most MAX_FRAMES, the latest), and where the
    next one starts."""
    start = max(start, stop - MAX_FRAMES)
    data = {
        "stream_id": stream_id,
        "from_ms": start * FRAME_MS,
        "inbound": recording.levels("inbound", start, stop),
        "outbound": recording.levels("outbound", start, stop),
    }
    return f"event: level\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode(), stop


class LevelStream(Response):
    """The levels of one call's streams until the call ends (then an ``end`` message), or the reader leaves,
    or the emulator stops (the feed of its namespace is closed: uvicorn waits for open answers)."""

    media_type = "text/event-stream"

    def __init__(self, call: Call, recordings: RecordingStore, feed: Feed) -> None:
        self.call, self.recordings, self.feed = call, recordings, feed
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"})
        self._gone = asyncio.Event()
        self._sent: dict[str, int] = {}  # stream id: the next tick to send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._until_disconnected(receive), name="level-stream-disconnect")
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope["method"] != "HEAD":
                await self._write(send)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the reader went away mid-write
            pass
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _write(self, send: Send) -> None:
        idle = 0.0
        while not self._gone.is_set() and not self.feed.is_closed:
            is_over = not self.call.is_alive and all(not record.is_active for record in self.call.streams.values())
            body = self._collect()
            if is_over:
                end = json.dumps({"call_control_id": self.call.call_control_id})
                last = body + f"event: end\ndata: {end}\n\n".encode()
                await send({"type": "http.response.body", "body": last, "more_body": True})
                return
            idle = 0.0 if body else idle + INTERVAL
            if idle >= PING_INTERVAL:
                body, idle = PING, 0.0
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            try:
                async with asyncio.timeout(INTERVAL):
                    await self._gone.wait()
            except TimeoutError:
                pass

    def _collect(self) -> bytes:
        parts = []
        for stream_id in self.call.streams:
            recording = self.recordings.get(stream_id)
            if recording is None:
                continue
            start = self._sent.get(stream_id, 0)
            if recording.ticks > start:
                message, self._sent[stream_id] = level_message(stream_id, recording, start, recording.ticks)
                parts.append(message)
        return b"".join(parts)

    async def _until_disconnected(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone.set()


async def call_levels(request: Request) -> Response:
    return LevelStream(own_call(request), emulator_state(request).runtime.recordings, namespace_of(request).feed)


async def stream_markers(request: Request) -> Response:
    """The caller's steps (null once the recording is no longer kept) and the app's marks and clears."""
    record = find_stream(request)
    recording = emulator_state(request).runtime.recordings.get(record.spec.stream_id)
    caller: list[dict[str, Any]] | None = None
    if recording is not None:
        caller = [{"at_ms": at, "label": label} for at, label in recording.caller_steps()]
    app = [{"at_ms": tick * FRAME_MS, "kind": kind, "name": name} for tick, kind, name in record.app_controls]
    return JSONResponse({"data": {"stream_id": record.spec.stream_id, "caller": caller, "app": app}})


def level_routes() -> list[Route]:
    return [
        Route("/_emulator/calls/{call_control_id}/levels", call_levels, methods=["GET"]),
        Route("/_emulator/streams/{stream_id}/markers", stream_markers, methods=["GET"]),
    ]
