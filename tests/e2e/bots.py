"""Helpers for end-to-end tests of bidirectional media: a scripted WebSocket bot and its messages."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import soundfile
from websockets.asyncio.server import ServerConnection

from tests.servers import Connection, RunningEmulator, WsReceiver, timeout

AUTH = {"Authorization": "Bearer test-key"}
RTP = {"stream_bidirectional_mode": "rtp", "stream_track": "both_tracks"}

Script = Callable[[ServerConnection, Connection], Awaitable[None]]


def media(payload: bytes) -> str:
    return json.dumps({"event": "media", "media": {"payload": base64.b64encode(payload).decode()}})


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "mark": {"name": name}})


def mp3(seconds: float, rate: int = 8000, frequency: float = 0) -> bytes:
    """An MP3 file: silence, or a tone at ``frequency`` Hz."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="MP3")
    return buffer.getvalue()


def bot(script: Script) -> WsReceiver:
    """A stream target whose ``script(ws, conn)`` runs beside the recording of what arrives."""

    async def on_connect(ws: ServerConnection, conn: Connection) -> None:
        asyncio.get_running_loop().create_task(script(ws, conn))

    return WsReceiver(on_connect)


async def start(emulator: RunningEmulator, target: WsReceiver, body: dict[str, Any], call: str = "v3:bot") -> None:
    async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
        response = await client.post(f"/calls/{call}/actions/streaming_start", json={"stream_url": target.url, **body})
        assert response.status_code == 200, response.text


async def frames_seen(conn: Connection, n: int, seconds: float = 5) -> None:
    async with asyncio.timeout(timeout(seconds)):
        while len(conn.of("media")) < n:
            await asyncio.sleep(0.005)


def session_of(emulator: RunningEmulator, call: str = "v3:bot") -> tuple[Any, Any]:
    """The call's one stream record and its recording."""
    (record,) = emulator.store().calls[call].streams.values()
    return record, emulator.state.runtime.recordings.get(record.spec.stream_id)


def scenario_file(tmp_path: Path, text: str) -> str:
    """A scenario written to a file, as a path the emulator's ``--scenario`` accepts."""
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return str(path)
