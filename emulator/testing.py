"""Run an emulator in process for tests: ``TelnyxEmulator`` (what the pytest fixture yields).

One background thread runs an event loop of its own with three servers on free loopback ports:

- the emulator itself (``.url``, ``.api_url``), accepting any API key;
- a webhook receiver (``.webhook_url``), the emulator's default webhook URL, recording every webhook;
- a WebSocket receiver (``.stream_url``), recording every stream the emulator opens to it.

Because the servers live in their own thread, a synchronous test can block on ``wait_for_*`` while the
emulator keeps streaming; an async test awaits the ``*_async`` twins, which block a worker thread
instead of its event loop. Every wait is bounded and, on timeout, says what did arrive.

    with TelnyxEmulator(speed=0) as emu:
        emu.control.incoming_call("+13125550111", "+13125550122")
        hook = emu.wait_for_webhook("call.initiated")
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio.to_thread
import h11
import httpx
import uvicorn
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from emulator.app import create_app
from emulator.config import Settings
from emulator.signing import SigningKey
from emulator.state import EmulatorState

DEFAULT_API_KEY = "KEY-telnyx-emulator-test"
DEFAULT_TIMEOUT = 10.0
HOST = "127.0.0.1"
# One signing key per test process: nothing writes a key file into the home directory, and every
# emulator of the run verifies with the same public key.
_SIGNING_KEY = SigningKey.generate().private_b64()

T = TypeVar("T")


def fixture_settings(**overrides: Any) -> Settings:
    """The fixture's defaults: unpaced media, fast webhook retries, quiet logs; ``overrides`` win."""
    base = Settings(
        host=HOST,
        port=0,
        speed=0,
        signing_key=_SIGNING_KEY,
        webhook_retry_delays=(0.05, 0.1),
        log_level="warning",
    )
    return base.replace(**overrides)


# -- what the receivers record -------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedWebhook:
    """One webhook POST as the built-in receiver got it. Verify it with ``client.webhooks.unwrap(
    hook.text, headers=hook.headers)`` of the official SDK (public key: ``TelnyxEmulator.public_key``)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @functools.cached_property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_type(self) -> str:
        return str(self.json["data"]["event_type"])

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.json["data"]["payload"]
        return payload

    @property
    def call_control_id(self) -> str | None:
        value = self.payload.get("call_control_id")
        return str(value) if value is not None else None


@dataclass
class RecordedStream:
    """One WebSocket connection the emulator opened to ``stream_url``: every frame, in order."""

    path: str
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None

    def events(self) -> list[str]:
        return [str(m.get("event")) for m in self.messages]

    def frames(self, event: str | None = "media") -> list[dict[str, Any]]:
        return [m for m in self.messages if event is None or m.get("event") == event]

    @property
    def start(self) -> dict[str, Any] | None:
        return next(iter(self.frames("start")), None)

    @property
    def stream_id(self) -> str | None:
        return str(self.start["stream_id"]) if self.start is not None else None

    @property
    def call_control_id(self) -> str | None:
        return str(self.start["start"]["call_control_id"]) if self.start is not None else None

    def audio(self, track: str = "inbound") -> bytes:
        """The decoded payloads of one track's media frames, concatenated (codec bytes, not PCM)."""
        return b"".join(
            base64.b64decode(m["media"]["payload"]) for m in self.frames("media") if m["media"].get("track") == track
        )


class _Recorder:
    """What the receivers got, shared between the server thread and the test's thread."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.webhooks: list[ReceivedWebhook] = []
        self.streams: list[RecordedStream] = []

    def add_webhook(self, webhook: ReceivedWebhook) -> None:
        with self.changed:
            self.webhooks.append(webhook)
            self.changed.notify_all()

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
        """The first truthy ``predicate()`` within ``timeout`` seconds, else TimeoutError saying ``describe()``."""
        with self.changed:
            result = self.changed.wait_for(predicate, timeout)
            if not result:
                raise TimeoutError(f"{describe()} within {timeout:g} s")
            return result


# -- the servers ---------------------------------------------------------------------------------


class _LoopThread:
    """An event loop running in a daemon thread; ``run`` executes a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="telnyx-emulator", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens(), DEFAULT_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEFAULT_TIMEOUT)
        if not self.thread.is_alive():
            self.loop.close()


async def _serve(server: uvicorn.Server) -> tuple[asyncio.Task[None], int]:
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        # uvicorn has no "started" event to await; it sets a flag once its sockets listen.
        while not server.started:
            if task.done():
                raise RuntimeError("server exited during startup") from task.exception()
            await asyncio.sleep(0.005)
    return task, int(server.servers[0].sockets[0].getsockname()[1])


def _uvicorn(app: Any) -> uvicorn.Server:
    config = uvicorn.Config(app, host=HOST, port=0, log_level="warning", lifespan="on", access_log=False)
    return uvicorn.Server(config)


class _WebhookServer:
    """A minimal HTTP/1.1 server (h11, the parser uvicorn uses) that answers every request 200 and hands
    it to ``on_request``. uvicorn would do, but takes 0.2 s to shut down, which every test would pay."""

    def __init__(self, on_request: Callable[[str, dict[str, str], bytes], None]) -> None:
        self.on_request = on_request
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing a connection ends its handler (it reads end-of-file). Cancelling the handler instead
        # would make asyncio's stream machinery log the cancellation as an error.
        for writer in self._connections.values():
            writer.close()
        tasks = list(self._connections)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=DEFAULT_TIMEOUT)
            for task in pending:
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        connection = h11.Connection(h11.SERVER)
        target, headers, body = "", {}, bytearray()
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    target = event.target.decode("latin-1")
                    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                    body = bytearray()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    self.on_request(target.split("?", 1)[0], headers, bytes(body))
                    writer.write(connection.send(h11.Response(status_code=200, headers=[("content-length", "0")])))
                    writer.write(connection.send(h11.EndOfMessage()))
                    await writer.drain()
                    if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                        break
                    connection.start_next_cycle()  # keep-alive: the emulator reuses its connections
                else:  # ConnectionClosed, or a state h11 cannot continue from
                    break
        except (h11.RemoteProtocolError, ConnectionError):
            pass  # a client that speaks no HTTP or went away mid-request: nothing to record
        finally:
            writer.close()
            self._connections.pop(task, None)


class TelnyxEmulator:
    """An emulator with a webhook receiver and a stream receiver, in a background thread.

    ``overrides`` are ``Settings`` fields (``speed=1``, ``scenario="tone"``, ``api_keys=...``, ...);
    ``webhook_url`` defaults to the built-in receiver. Use as a context manager, or ``start``/``stop``.
    """

    def __init__(self, settings: Settings | None = None, *, api_key: str = DEFAULT_API_KEY, **overrides: Any) -> None:
        self.settings = (settings or fixture_settings()).replace(**overrides)
        self.api_key = api_key
        self._recorder = _Recorder()
        self._loop: _LoopThread | None = None
        self._app: Any = None
        self._server: tuple[uvicorn.Server, asyncio.Task[None]] | None = None
        self._webhook_server = _WebhookServer(self._on_webhook)
        self._ws_server: Server | None = None
        self._urls: dict[str, str] = {}
        self._control: ControlPlane | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> TelnyxEmulator:
        self._loop = _LoopThread()
        try:
            self._loop.run(self._start(), DEFAULT_TIMEOUT * 3)
        except BaseException:
            self.stop()
            raise
        self._control = ControlPlane(self.url, self.api_key)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._loop is not None:
            try:
                self._loop.run(self._stop(), DEFAULT_TIMEOUT * 2)
            finally:
                self._loop.close()
                self._loop = None
                self._urls.clear()

    def __enter__(self) -> TelnyxEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._ws_server = await serve(self._on_stream, HOST, 0, compression=None)
        ws_port = next(iter(self._ws_server.sockets)).getsockname()[1]
        self._urls["stream"] = f"ws://{HOST}:{ws_port}/stream"
        self._urls["webhook"] = f"http://{HOST}:{await self._webhook_server.start()}/webhooks"
        if self.settings.webhook_url is None:
            self.settings = self.settings.replace(webhook_url=self._urls["webhook"])
        self._app = create_app(self.settings)
        server = _uvicorn(self._app)
        task, port = await _serve(server)
        self._server = (server, task)
        self._urls["emulator"] = f"http://{HOST}:{port}"

    async def _stop(self) -> None:
        # The emulator first, so its running streams send stop and its last webhooks to live receivers.
        if self._server is not None:
            server, task = self._server
            server.should_exit = True
            async with asyncio.timeout(DEFAULT_TIMEOUT):
                await task
            self._server = None
        await self._webhook_server.close()
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()

    # -- the receivers ---------------------------------------------------------------------------

    def _on_webhook(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self._recorder.add_webhook(ReceivedWebhook(path, headers, body))

    async def _on_stream(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        stream = RecordedStream(path=ws.request.path, headers=headers)
        with self._recorder.changed:
            self._recorder.streams.append(stream)
            self._recorder.changed.notify_all()
        try:
            async for raw in ws:
                text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
                try:
                    message = json.loads(text)
                except ValueError:
                    message = {"event": None, "raw": text}
                with self._recorder.changed:
                    stream.messages.append(message)
                    self._recorder.changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._recorder.changed:
                stream.closed, stream.close_code = True, ws.close_code
                self._recorder.changed.notify_all()

    # -- where things are ------------------------------------------------------------------------

    def _url(self, name: str) -> str:
        if name not in self._urls:
            raise RuntimeError("the emulator is not running: use it as a context manager or call start()")
        return self._urls[name]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the control plane is under ``/_emulator/``."""
        return self._url("emulator")

    @property
    def api_url(self) -> str:
        """What the SDKs take as ``base_url``: ``telnyx.Telnyx(api_key=..., base_url=emu.api_url)``."""
        return f"{self.url}/v2"

    @property
    def webhook_url(self) -> str:
        return self._url("webhook")

    @property
    def stream_url(self) -> str:
        return self._url("stream")

    @property
    def public_key(self) -> str:
        """Base64 Ed25519 public key the webhooks verify with (``TELNYX_PUBLIC_KEY``)."""
        return self.state.signing_key.public_key_b64()

    @property
    def state(self) -> EmulatorState:
        """The emulator's in-process state, for assertions the control plane does not offer."""
        if self._app is None:
            raise RuntimeError("the emulator is not running")
        state: EmulatorState = self._app.state.emulator
        return state

    @property
    def control(self) -> ControlPlane:
        """The control plane (``/_emulator/``) as this fixture's API key sees it."""
        if self._control is None:
            raise RuntimeError("the emulator is not running")
        return self._control

    @property
    def acontrol(self) -> AsyncControlPlane:
        return AsyncControlPlane(self.url, self.api_key)

    # -- what arrived ----------------------------------------------------------------------------

    @property
    def webhooks(self) -> list[ReceivedWebhook]:
        with self._recorder.changed:
            return list(self._recorder.webhooks)

    @property
    def streams(self) -> list[RecordedStream]:
        with self._recorder.changed:
            return list(self._recorder.streams)

    def wait_for_webhooks(
        self,
        event_type: str | None = None,
        *,
        count: int = 1,
        call_control_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[ReceivedWebhook]:
        """At least ``count`` webhooks of ``event_type`` (any type if None), optionally of one call: all of them."""
        if count < 1:
            raise ValueError("count must be at least 1")

        def matching() -> list[ReceivedWebhook]:
            return [
                hook
                for hook in self._recorder.webhooks
                if (event_type is None or hook.event_type == event_type)
                and (call_control_id is None or hook.call_control_id == call_control_id)
            ]

        def describe() -> str:
            got = ", ".join(hook.event_type for hook in self._recorder.webhooks) or "nothing"
            return f"expected {count} {event_type or 'any'} webhook(s); received {got}"

        return self._recorder.wait(lambda: found if len(found := matching()) >= count else None, timeout, describe)

    def wait_for_webhook(
        self, event_type: str | None = None, *, call_control_id: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> ReceivedWebhook:
        """The first webhook of ``event_type`` (optionally of one call), waiting for it if need be."""
        return self.wait_for_webhooks(event_type, call_control_id=call_control_id, timeout=timeout)[0]

    def wait_for_stream(self, index: int = 0, *, timeout: float = DEFAULT_TIMEOUT) -> RecordedStream:
        """The ``index``-th connection to ``stream_url`` (0: the first), once it is open."""
        streams = self._recorder.streams
        return self._recorder.wait(
            lambda: streams[index] if len(streams) > index else None,
            timeout,
            lambda: f"expected stream #{index}; {len(streams)} connection(s) arrived",
        )

    def wait_for_frames(
        self, count: int = 1, *, event: str | None = "media", stream: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """At least ``count`` frames of ``event`` (any if None) on stream ``stream``: all of them so far."""
        deadline = time.monotonic() + timeout
        recorded = self.wait_for_stream(stream, timeout=timeout)
        timeout = max(deadline - time.monotonic(), 0.0)

        def describe() -> str:
            return f"expected {count} {event or 'any'} frame(s) on stream #{stream}; got {len(recorded.frames(event))}"

        return self._recorder.wait(
            lambda: frames if len(frames := recorded.frames(event)) >= count else None, timeout, describe
        )

    def wait_for_stream_end(self, index: int = 0, *, timeout: float = DEFAULT_TIMEOUT) -> RecordedStream:
        """The ``index``-th stream once the emulator has closed it."""
        deadline = time.monotonic() + timeout
        recorded = self.wait_for_stream(index, timeout=timeout)
        timeout = max(deadline - time.monotonic(), 0.0)
        return self._recorder.wait(
            lambda: recorded if recorded.closed else None,
            timeout,
            lambda: f"expected stream #{index} to close; its last frames: {recorded.events()[-3:]}",
        )

    # The same waits for async tests: the blocking part runs in a worker thread, never in the loop.

    async def wait_for_webhooks_async(self, *args: Any, **kwargs: Any) -> list[ReceivedWebhook]:
        return await _off_loop(functools.partial(self.wait_for_webhooks, *args, **kwargs))

    async def wait_for_webhook_async(self, *args: Any, **kwargs: Any) -> ReceivedWebhook:
        return await _off_loop(functools.partial(self.wait_for_webhook, *args, **kwargs))

    async def wait_for_stream_async(self, *args: Any, **kwargs: Any) -> RecordedStream:
        return await _off_loop(functools.partial(self.wait_for_stream, *args, **kwargs))

    async def wait_for_frames_async(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return await _off_loop(functools.partial(self.wait_for_frames, *args, **kwargs))

    async def wait_for_stream_end_async(self, *args: Any, **kwargs: Any) -> RecordedStream:
        return await _off_loop(functools.partial(self.wait_for_stream_end, *args, **kwargs))


async def _off_loop(wait: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(wait)


# -- the control plane ---------------------------------------------------------------------------


class ControlPlaneError(Exception):
    """A control-plane request was answered with an error status; ``errors`` is Telnyx's envelope."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        detail = "; ".join(str(e.get("detail") or e.get("title")) for e in errors) or "no details"
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.errors = errors


def _data(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()["data"]
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        errors = [{"title": response.text}]
    raise ControlPlaneError(response.status_code, errors)


def _incoming_call_body(from_: str, to: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"from": from_, "to": to, **fields}


class ControlPlane:
    """A synchronous client of ``/_emulator/`` for one API key (its namespace). See docs/control-plane.md."""

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        self._http = httpx.Client(base_url=f"{url}/_emulator", headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def incoming_call(self, from_: str, to: str, **fields: Any) -> dict[str, Any]:
        """Ring the app: ``fields`` are ``scenario``, ``webhook_url``, ``client_state``, ``connection_id``."""
        call: dict[str, Any] = _data(self._http.post("/calls", json=_incoming_call_body(from_, to, fields)))
        return call

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = _data(self._http.get("/calls"))
        return calls

    def call(self, call_control_id: str) -> dict[str, Any]:
        call: dict[str, Any] = _data(self._http.get(f"/calls/{call_control_id}"))
        return call

    def streams(self) -> list[dict[str, Any]]:
        streams: list[dict[str, Any]] = _data(self._http.get("/streams"))
        return streams

    def webhooks(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = _data(self._http.get("/webhooks"))
        return attempts

    def commands(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = _data(self._http.get("/commands"))
        return entries

    def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = _data(self._http.post("/reset"))
        return result

    def seed(self, seed: int | None) -> dict[str, Any]:
        result: dict[str, Any] = _data(self._http.post("/seed", json={"seed": seed}))
        return result


class AsyncControlPlane:
    """``ControlPlane`` for async tests (a short-lived client per request, so any event loop works)."""

    def __init__(self, url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._base = f"{url}/_emulator"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self._base, headers=self._headers, timeout=self._timeout) as http:
            return _data(await http.request(method, path, json=body))

    async def incoming_call(self, from_: str, to: str, **fields: Any) -> dict[str, Any]:
        call: dict[str, Any] = await self._request("POST", "/calls", _incoming_call_body(from_, to, fields))
        return call

    async def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = await self._request("GET", "/calls")
        return calls

    async def call(self, call_control_id: str) -> dict[str, Any]:
        call: dict[str, Any] = await self._request("GET", f"/calls/{call_control_id}")
        return call

    async def streams(self) -> list[dict[str, Any]]:
        streams: list[dict[str, Any]] = await self._request("GET", "/streams")
        return streams

    async def webhooks(self) -> list[dict[str, Any]]:
        attempts: list[dict[str, Any]] = await self._request("GET", "/webhooks")
        return attempts

    async def commands(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = await self._request("GET", "/commands")
        return entries

    async def reset(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", "/reset")
        return result

    async def seed(self, seed: int | None) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", "/seed", {"seed": seed})
        return result
