"""``TelnyxEmulator``: an emulator, a webhook receiver and a WebSocket receiver in a background thread."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from emulator.app import create_app
from emulator.config import Settings
from emulator.state import EmulatorState
from emulator.testing.control import AsyncControlPlane, ControlPlane
from emulator.testing.metrics import CallMetrics
from emulator.testing.recorded import ReceivedWebhook, RecordedStream, Recorder
from emulator.testing.servers import LoopThread, PromptServer, WebhookServer, serve_until_listening, uvicorn_server
from emulator.testing.settings import DEFAULT_API_KEY, DEFAULT_TIMEOUT, HOST, fixture_settings

T = TypeVar("T")


class TelnyxEmulator:
    """An emulator with a webhook receiver and a stream receiver, in a background thread.

    ``overrides`` are ``Settings`` fields (``speed=1``, ``scenario="tone"``, ``api_keys=...``, ...);
    ``webhook_url`` defaults to the built-in receiver. ``api_key`` is the key the helpers (``control``)
    use: by default one of ``api_keys`` if given, else ``DEFAULT_API_KEY``. Use as a context manager, or
    ``start``/``stop``.
    """

    def __init__(self, settings: Settings | None = None, *, api_key: str | None = None, **overrides: Any) -> None:
        self.settings = (settings or fixture_settings()).replace(**overrides)
        keys = self.settings.api_keys
        if api_key is None:  # the helpers' key: one the emulator accepts
            api_key = min(keys) if keys else DEFAULT_API_KEY
        elif keys and api_key not in keys:
            raise ValueError(f"api_key {api_key!r} is not one of api_keys: the helpers' requests would get 401")
        self.api_key = api_key
        self._recorder = Recorder()
        self._loop: LoopThread | None = None
        self._app: Any = None
        self._server: tuple[PromptServer, asyncio.Task[None]] | None = None
        self._webhook_server = WebhookServer(self._on_webhook)
        self._ws_server: Server | None = None
        self._urls: dict[str, str] = {}
        self._control: ControlPlane | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> TelnyxEmulator:
        self._loop = LoopThread()
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
        server = uvicorn_server(self._app)
        task, port = await serve_until_listening(server)
        self._server = (server, task)
        self._urls["emulator"] = f"http://{HOST}:{port}"

    async def _stop(self) -> None:
        # The emulator first, so its running streams send stop and its last webhooks to live receivers.
        if self._server is not None:
            server, task = self._server
            server.exit()
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

    def wait_for_metrics(self, call_control_id: str, *, timeout: float = DEFAULT_TIMEOUT) -> CallMetrics:
        """The call's final conversation metrics: waits for its ``call.hangup``, then reads them."""
        self.wait_for_webhook("call.hangup", call_control_id=call_control_id, timeout=timeout)
        return self.control.metrics(call_control_id)

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
