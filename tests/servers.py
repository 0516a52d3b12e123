"""Real servers on free loopback ports for end-to-end tests: the emulator under uvicorn, a
WebSocket stream target, and (later) a webhook receiver. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from emulator.api.proxy import proxy_protocol
from emulator.app import create_app
from emulator.calls.ids import IdFactory
from emulator.clock import Clock
from emulator.config import Settings
from emulator.local_ca import LocalCA
from emulator.testing.servers import PromptServer
from emulator.webhooks.signing import SigningKey

# One key for the whole test run, so no test writes a key file into the home directory.
TEST_SIGNING_KEY = SigningKey.generate().private_b64()


def emulator_settings(**changes: Any) -> Settings:
    """Settings for an emulator under test: a free port, unpaced media, fast webhook retries."""
    base = Settings(speed=0, port=0, signing_key=TEST_SIGNING_KEY, webhook_retry_delays=(0.01, 0.01))
    return base.replace(**changes)


# Scale every timeout on slow machines: EMULATOR_TEST_TIMEOUT_FACTOR=3 pytest ...
TIMEOUT_FACTOR = float(os.environ.get("EMULATOR_TEST_TIMEOUT_FACTOR", "1"))


def timeout(seconds: float) -> float:
    return seconds * TIMEOUT_FACTOR


@dataclass
class RunningEmulator:
    url: str
    server: uvicorn.Server
    app: Any

    @property
    def state(self) -> Any:
        return self.app.state.emulator

    @property
    def api(self) -> str:
        return f"{self.url}/v2"

    def store(self, api_key: str = "test-key") -> Any:
        """The calls of one API key's namespace (the e2e tests use ``Bearer test-key``)."""
        return self.state.namespaces.get(api_key).store


@asynccontextmanager
async def run_emulator(
    settings: Settings | None = None, *, seed: int | None = 1, clock: Clock | None = None, proxy: bool = False
) -> AsyncIterator[RunningEmulator]:
    """The emulator under uvicorn on a free port; ``proxy``: also an HTTPS proxy for api.telnyx.com, as
    ``serve`` runs it, with the local CA of ``settings.cert_dir``."""
    settings = settings or emulator_settings()
    app = create_app(settings, ids=IdFactory(seed), clock=clock)
    http: Any = proxy_protocol(LocalCA(settings.cert_dir).server_context()) if proxy else "auto"
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", http=http)
    server = PromptServer(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(timeout(10)):
        while not server.started:
            if task.done():
                raise RuntimeError("emulator exited during startup") from task.exception()
            await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningEmulator(f"http://127.0.0.1:{port}", server, app)
    finally:
        server.exit()
        async with asyncio.timeout(timeout(15)):
            await task


@dataclass
class Connection:
    """One connection the stream target accepted, with every message it received."""

    path: str
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    close_code: int | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def events(self) -> list[str]:
        return [m["event"] for m in self.messages]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == event]


Handler = Callable[[ServerConnection, Connection], Any]


class WsReceiver:
    """A WebSocket server standing in for the user's stream_url; records every message."""

    def __init__(self, on_connect: Handler | None = None) -> None:
        self.connections: list[Connection] = []
        self.on_connect = on_connect
        self._changed = asyncio.Condition()
        self.server: Server | None = None
        self.errors: list[BaseException] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        scheme = "wss" if self._tls else "ws"
        return f"{scheme}://localhost:{port}/stream" if self._tls else f"ws://127.0.0.1:{port}/stream"

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        conn = Connection(path=ws.request.path, headers={k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.connections.append(conn)
        await self._notify()
        try:
            if self.on_connect is not None:
                await self.on_connect(ws, conn)
            async for raw in ws:
                conn.messages.append(json.loads(raw))
                conn.arrival.append(asyncio.get_running_loop().time())
                await self._notify()
        except ConnectionClosed:
            pass
        except BaseException as exc:  # raised again at teardown so a broken handler fails the test
            self.errors.append(exc)
            raise
        finally:
            conn.close_code = ws.close_code
            conn.closed.set()
            await self._notify()

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5) -> None:
        async with asyncio.timeout(timeout(seconds)):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_connection(self, index: int = 0, seconds: float = 5) -> Connection:
        await self.wait_for(lambda: len(self.connections) > index, seconds)
        return self.connections[index]

    async def wait_closed(self, index: int = 0, seconds: float = 10) -> Connection:
        conn = await self.wait_connection(index, seconds)
        async with asyncio.timeout(timeout(seconds)):
            await conn.closed.wait()
        return conn

    @asynccontextmanager
    async def running(self, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[WsReceiver]:
        self._tls = ssl_context is not None
        async with serve(self._handler, "127.0.0.1", 0, ssl=ssl_context, compression=None) as server:
            self.server = server
            yield self
        if self.errors:
            raise self.errors[0]
