"""A real HTTP server standing in for the user's webhook URL: records every request, fails on cue.

    async with WebhookReceiver().running() as receiver:
        receiver.fail_next(2, status=500)      # the next two requests get 500
        receiver.slow_next(1)                  # the one after that gets no answer until release()
        ...
        requests = await receiver.wait_for(count=4)

A stalled request is answered (200) when ``release()`` is called or the receiver stops, so nothing
here sleeps a fixed time: the sender's own timeout decides how long a test waits.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import timeout as scaled

STALL = "stall"
# What to do with one request: answer with this status, or STALL (answer only on release/stop).
Action = int | str


@dataclass
class ReceivedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any
    arrival: float
    status: int | None = None  # what the receiver answered; None while stalled
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @property
    def event_type(self) -> str | None:
        try:
            return str(self.json["data"]["event_type"])
        except (KeyError, TypeError):
            return None

    @property
    def attempt(self) -> int | None:
        try:
            return int(self.json["meta"]["attempt"])
        except (KeyError, TypeError):
            return None


class WebhookReceiver:
    """Records requests on any path; answers 200 unless scripted otherwise.

    Scripting, checked in this order for each request:
    - ``responses``: a callable given the ReceivedRequest, returning a status, STALL, or None (fall through);
    - the queue filled by ``fail_next`` / ``slow_next``, one entry per request;
    - ``default_status`` (200).
    A 3xx answer carries ``Location: /redirected`` so a sender that followed redirects would show up there.
    """

    def __init__(
        self,
        responses: Callable[[ReceivedRequest], Action | None] | None = None,
        default_status: int = 200,
    ) -> None:
        self.responses = responses
        self.default_status = default_status
        self.requests: list[ReceivedRequest] = []
        self._script: deque[Action] = deque()
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self.server: uvicorn.Server | None = None
        self.port: int | None = None

    # -- scripting -----------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        self._script.extend([status] * n)

    def slow_next(self, n: int) -> None:
        """Leave the next ``n`` requests unanswered until ``release()`` or shutdown: slower than any timeout."""
        self._script.extend([STALL] * n)

    def release(self) -> None:
        self._release.set()

    # -- inspection ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.port is not None, "receiver is not running"
        return f"http://127.0.0.1:{self.port}/webhooks"

    def url_for(self, path: str) -> str:
        assert self.port is not None, "receiver is not running"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def bodies(self) -> list[Any]:
        return [r.json for r in self.requests]

    async def wait_for(self, count: int = 1, timeout: float = 5) -> list[ReceivedRequest]:
        """Wait until at least ``count`` requests arrived (``timeout`` is scaled); return them all."""
        await self.wait_until(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)

    async def wait_until(self, predicate: Callable[[], bool], seconds: float = 5) -> None:
        async with asyncio.timeout(scaled(seconds)):
            async with self._changed:
                await self._changed.wait_for(predicate)

    # -- server --------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _choose(self, request: ReceivedRequest) -> Action:
        if self.responses is not None:
            chosen = self.responses(request)
            if chosen is not None:
                return chosen
        if self._script:
            return self._script.popleft()
        return self.default_status

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        received = ReceivedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw},
            body=body,
            json=parsed,
            arrival=asyncio.get_running_loop().time(),
        )
        self.requests.append(received)
        action = self._choose(received)
        await self._notify()
        if action == STALL:
            await self._release.wait()
            action = 200
        assert isinstance(action, int)
        received.status = action
        received.answered.set()
        await self._notify()
        headers = {"Location": "/redirected"} if 300 <= action < 400 else None
        return Response(b"", status_code=action, headers=headers)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookReceiver]:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(scaled(10)):
            while not server.started:
                if task.done():
                    raise RuntimeError("webhook receiver exited during startup") from task.exception()
                await asyncio.sleep(0.005)
        self.server = server
        self.port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self.release()
            server.should_exit = True
            async with asyncio.timeout(scaled(15)):
                await task
