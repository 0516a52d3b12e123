"""PromptServer (the fixture's uvicorn) stops without uvicorn's fixed pauses but keeps its graceful steps:
a request in flight is answered, then the app's lifespan shutdown runs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import uvicorn

from emulator.testing.servers import PromptServer, serve_until_listening

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


class SlowApp:
    """Answers after ``release`` is set; records its lifespan events."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received = asyncio.Event()
        self.lifespan: list[str] = []
        self.lifespan_at_answer: list[str] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                self.lifespan.append(kind)
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        self.received.set()
        await self.release.wait()
        self.lifespan_at_answer = list(self.lifespan)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_a_request_in_flight_is_answered_before_the_lifespan_shuts_down():
    app = SlowApp()
    server = PromptServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task, port = await serve_until_listening(server)
    async with httpx.AsyncClient() as client:
        request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/"))
        await asyncio.wait_for(app.received.wait(), 5)
        server.exit()
        async with asyncio.timeout(5):  # the shutdown has begun: it no longer accepts connections
            while server.servers[0].is_serving():
                await asyncio.sleep(0.001)
        app.release.set()
        response = await asyncio.wait_for(request, 5)
    await asyncio.wait_for(task, 5)
    assert response.status_code == 200 and response.text == "ok"
    assert app.lifespan_at_answer == ["startup"]  # the app was still up when it answered
    assert app.lifespan == ["startup", "shutdown"]


async def test_idle_keep_alive_connections_do_not_hold_the_stop():
    app = SlowApp()
    app.release.set()
    server = PromptServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task, port = await serve_until_listening(server)
    async with httpx.AsyncClient() as client:  # keeps its connection open after the answer
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        server.exit()
        await asyncio.wait_for(task, 5)
    assert app.lifespan == ["startup", "shutdown"]
