"""A stream stopped while its WebSocket handshake is still in progress never starts: once the handshake
completes the emulator closes with 1000 without sending a frame, and the webhooks say so in order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from tests.e2e.bots import AUTH, session_of
from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@dataclass
class SlowHandshakeTarget:
    """A stream target that holds every handshake until ``release`` is set."""

    url: str = ""
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refuse: bool = False  # answer the handshake with 503 instead of accepting it
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.entered.set()
        await self.release.wait()  # the handshake's answer waits here
        return connection.respond(503, "busy\n") if self.refuse else None

    async def handler(self, ws: ServerConnection) -> None:
        async for raw in ws:
            self.messages.append(json.loads(raw))
        self.close_code = ws.close_code
        self.closed.set()


@asynccontextmanager
async def slow_target() -> AsyncIterator[SlowHandshakeTarget]:
    target = SlowHandshakeTarget()
    async with serve(target.handler, "127.0.0.1", 0, process_request=target.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        target.url = f"ws://127.0.0.1:{port}/stream"
        yield target


@pytest.mark.parametrize(
    ("action", "reason", "events"),
    [
        ("hangup", "hangup", ["call.hangup", "streaming.stopped"]),
        ("streaming_stop", "stopped", ["streaming.stopped"]),
    ],
)
async def test_a_stream_stopped_during_its_handshake_closes_without_a_frame(action, reason, events):
    async with WebhookReceiver().running() as hooks, slow_target() as target:
        settings = emulator_settings(speed=1, scenario="tone", webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as v2:
            started = await v2.post("/calls/v3:bot/actions/streaming_start", json={"stream_url": target.url})
            assert started.status_code == 200
            async with asyncio.timeout(timeout(5)):
                await target.entered.wait()
            assert (await v2.post(f"/calls/v3:bot/actions/{action}", json={})).status_code == 200
            target.release.set()
            async with asyncio.timeout(timeout(5)):
                await target.closed.wait()
            await emulator.state.runtime.wait_idle()
            assert (target.messages, target.close_code) == ([], 1000)
            record, _ = session_of(emulator)
            assert (record.state.value, record.end_reason, record.frames_sent) == ("stopped", reason, 0)
            assert [r.event_type for r in hooks.requests] == events


async def test_a_stream_stopped_during_its_handshake_is_stopped_even_if_the_handshake_then_fails():
    async with WebhookReceiver().running() as hooks, slow_target() as target:
        target.refuse = True
        settings = emulator_settings(speed=1, scenario="tone", webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as v2:
            await v2.post("/calls/v3:bot/actions/streaming_start", json={"stream_url": target.url})
            async with asyncio.timeout(timeout(5)):
                await target.entered.wait()
            assert (await v2.post("/calls/v3:bot/actions/hangup", json={})).status_code == 200
            target.release.set()
            await hooks.wait_until(lambda: len(hooks.requests) >= 2)
            await emulator.state.runtime.wait_idle()
            record, _ = session_of(emulator)
            assert (record.state.value, record.end_reason, record.error) == ("stopped", "hangup", None)
            assert [r.event_type for r in hooks.requests] == ["call.hangup", "streaming.stopped"]
