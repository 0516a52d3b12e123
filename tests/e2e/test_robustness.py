"""Faults and limits end to end: stream targets that misbehave, request bodies and stream counts
over their limits, streams that run too long. Each fault must give the documented webhook and
state (docs/robustness.md), the emulator must keep serving, and its tasks and sockets must return
to where they were before."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.receivers import WebhookReceiver
from tests.servers import RunningEmulator, WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def eventually(predicate: Callable[[], bool], seconds: float = 5) -> None:
    """Poll a condition that no event announces (fd counts), up to a bound."""
    async with asyncio.timeout(timeout(seconds)):
        while not predicate():
            await asyncio.sleep(0.02)


async def start_stream(emulator: RunningEmulator, body: dict[str, Any], call: str = "v3:fault") -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
        return await client.post(f"/calls/{call}/actions/streaming_start", json=body)


async def hang_up(emulator: RunningEmulator, call: str) -> None:
    """End a call (its caller's media with it) unless it has ended already."""
    async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
        response = await client.post(f"/calls/{call}/actions/hangup", json={})
    assert response.status_code == 200 or response.json()["errors"][0]["code"] == "90018"


@asynccontextmanager
async def ws_target(
    handler: Callable[[ServerConnection], Awaitable[None]],
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> AsyncIterator[str]:
    """A misbehaving stream target on a free loopback port; yields its ws:// URL."""
    # A short close_timeout: a target that stopped reading never answers the close handshake, and the
    # test should not wait websockets' default 10 s for it when the server shuts down.
    async with serve(
        handler, "127.0.0.1", 0, process_request=process_request, compression=None, close_timeout=0.2
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/stream"


async def read_some(ws: ServerConnection, n: int = 5) -> None:
    for _ in range(n):
        await ws.recv()


async def close_mid_stream(ws: ServerConnection) -> None:
    await read_some(ws)
    await ws.close(4000, "the app is done")


async def drop_mid_stream(ws: ServerConnection) -> None:
    await read_some(ws)
    ws.transport.abort()  # no close frame: the TCP connection just goes away


async def never_read(ws: ServerConnection) -> None:
    # websockets stops reading the socket once max_queue messages wait, so TCP backs up to the emulator.
    await ws.wait_closed()


async def send_garbage(ws: ServerConnection) -> None:
    for garbage in (b"\x00\xff binary", "not json", "[1, 2]", '{"event": "bogus"}', '{"event": "media"}'):
        await ws.send(garbage)
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


def reject_403(connection: ServerConnection, request: Request) -> Response:
    return connection.respond(403, "Forbidden\n")


async def never_called(ws: ServerConnection) -> None:
    raise AssertionError("a rejected handshake never reaches the handler")


# fault -> (handler, process_request, url suffix, expected webhook, end_reason, error substring)
STREAM_FAULTS: dict[str, tuple[Any, Any, str, str, str, str]] = {
    "handshake_403": (never_called, reject_403, "", "streaming.failed", "connection_failed", "403"),
    "close_mid_stream": (close_mid_stream, None, "", "streaming.stopped", "disconnected", "code 4000"),
    "tcp_drop_mid_stream": (drop_mid_stream, None, "", "streaming.stopped", "disconnected", "without a close"),
    "never_reads": (never_read, None, "", "streaming.failed", "send_timeout", "read nothing"),
    "garbage_frames": (send_garbage, None, "", "streaming.stopped", "completed", ""),
}


@pytest.fixture
def long_silence(tmp_path: Any) -> str:
    """Ten minutes of silence: at speed 0 and L16, enough bytes to fill any loopback socket buffer."""
    path = tmp_path / "long.yaml"
    path.write_text("description: ten minutes of silence\ninbound:\n  - silence: {ms: 600000}\n")
    return str(path)


async def check_fault(
    emulator: RunningEmulator, webhooks: WebhookReceiver, url: str, call: str
) -> tuple[dict[str, Any], Any]:
    """Start a stream to ``url``; return its terminal webhook payload and record once all is idle."""
    body = {"stream_url": url, "stream_track": "both_tracks", "stream_codec": "L16"}
    response = await start_stream(emulator, body, call)
    assert response.status_code == 200, response.text
    await webhooks.wait_until(lambda: terminal_event(webhooks, call) is not None, seconds=15)
    await emulator.state.runtime.wait_idle()
    event = terminal_event(webhooks, call)
    assert event is not None
    (record,) = emulator.store().calls[call].streams.values()
    return event, record


def terminal_event(webhooks: WebhookReceiver, call: str) -> dict[str, Any] | None:
    for body in webhooks.bodies():
        data = body["data"]
        terminal = data["event_type"] in ("streaming.failed", "streaming.stopped")
        if terminal and data["payload"]["call_control_id"] == call:
            return dict(data)
    return None


@pytest.mark.parametrize("media_workers", [0, 1], ids=["in-process", "media-worker"])
async def test_stream_target_faults_give_the_documented_webhook_and_leave_nothing_behind(long_silence, media_workers):
    # The same outcomes whether the WebSocket lives in the main process or in a media worker (docs/scaling.md).
    settings = emulator_settings(
        scenario=long_silence, stream_send_timeout=0.5, connect_timeout=2, media_workers=media_workers
    )
    async with WebhookReceiver().running() as webhooks, run_emulator(settings.replace(webhook_url=webhooks.url)) as emu:
        # A first, healthy stream opens the webhook client's keep-alive connection: the baseline includes it.
        async with WsReceiver().running() as healthy:
            response = await start_stream(emu, {"stream_url": healthy.url}, "v3:warm-up")
            assert response.status_code == 200
            await healthy.wait_connection()
            async with httpx.AsyncClient(base_url=emu.api, headers=AUTH) as client:
                await client.post("/calls/v3:warm-up/actions/streaming_stop", json={})
            await healthy.wait_closed()
            await hang_up(emu, "v3:warm-up")
        await emu.state.runtime.wait_idle()
        baseline_fds, baseline_tasks = open_fds(), len(asyncio.all_tasks())

        outcomes = {}
        for fault, (handler, process_request, _suffix, webhook, reason, error) in STREAM_FAULTS.items():
            async with ws_target(handler, process_request) as url:
                event, record = await check_fault(emu, webhooks, url, f"v3:{fault}")
            outcomes[fault] = (event["event_type"], record.end_reason)
            assert event["event_type"] == webhook, (fault, event, record.error)
            assert record.end_reason == reason, (fault, record.error)
            assert error in (record.error or ""), (fault, record.error)
            assert record.state == ("failed" if webhook == "streaming.failed" else "stopped")
            if webhook == "streaming.failed":
                assert event["payload"]["failure_reason"] == reason
                assert event["payload"]["stream_id"] == record.spec.stream_id
            if fault == "garbage_frames":
                assert record.errors_sent == 5 and record.close_code == 1000
            await hang_up(emu, f"v3:{fault}")  # the caller stays on a call whose stream failed: end it

        for fault, url in {
            "refused": f"ws://127.0.0.1:{closed_port()}/stream",
            "unresolvable": "ws://unresolvable.invalid/stream",  # RFC 6761: never resolves
            "tls_to_plain_server": None,
        }.items():
            if url is None:
                async with ws_target(never_read) as plain:
                    url = plain.replace("ws://", "wss://")
                    event, record = await check_fault(emu, webhooks, url, f"v3:{fault}")
            else:
                event, record = await check_fault(emu, webhooks, url, f"v3:{fault}")
            outcomes[fault] = (event["event_type"], record.end_reason)
            await hang_up(emu, f"v3:{fault}")
            assert event["event_type"] == "streaming.failed" and record.end_reason == "connection_failed", fault
            assert event["payload"]["failure_reason"] == "connection_failed"
            if fault == "tls_to_plain_server":  # said in words, not as an empty ConnectionResetError
                assert (record.error or "").startswith("TLS handshake failed: "), record.error

        # Still serving, nothing left running, no socket or task leaked.
        runtime = emu.state.runtime
        await runtime.wait_idle()
        assert runtime.running == 0 and runtime.sessions == {} and runtime.failures == []
        async with httpx.AsyncClient(base_url=emu.api, headers=AUTH) as client:
            assert (await client.get("/calls/v3:anything")).status_code == 200
        await eventually(lambda: open_fds() <= baseline_fds)
        await eventually(lambda: len(asyncio.all_tasks()) <= baseline_tasks)
        assert len(outcomes) == 8


async def test_a_stream_longer_than_the_maximum_duration_ends_with_stop():
    settings = emulator_settings(speed=1, scenario="tone", stream_max_duration=0.3)
    async with WebhookReceiver().running() as webhooks, WsReceiver().running() as target:
        async with run_emulator(settings.replace(webhook_url=webhooks.url)) as emulator:
            await start_stream(emulator, {"stream_url": target.url}, "v3:long")
            conn = await target.wait_closed()
            assert conn.events()[-1] == "stop" and conn.close_code == 1000
            # 0.3 s of a 2 s tone: far fewer than the scenario's 100 frames.
            assert 5 <= len(conn.of("media")) < 60
            await webhooks.wait_until(lambda: terminal_event(webhooks, "v3:long") is not None)
            assert terminal_event(webhooks, "v3:long")["event_type"] == "streaming.stopped"
            (record,) = emulator.store().calls["v3:long"].streams.values()
            assert record.state == "stopped" and record.end_reason == "max_duration"


async def test_more_streams_than_the_maximum_are_refused_with_429_10011():
    settings = emulator_settings(speed=1, scenario="tone", max_streams=1)
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        body = {"stream_url": target.url}
        assert (await start_stream(emulator, body, "v3:first")).status_code == 200
        await target.wait_connection()
        refused = await start_stream(emulator, {**body, "client_state": "aGk="}, "v3:second")
        assert refused.status_code == 429
        (error,) = refused.json()["errors"]
        assert error["code"] == "10011" and error["title"] == "Too many requests" and "max-streams" in error["detail"]
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            dial = {"connection_id": "1", "to": "+13125550122", "from": "+13125550111", "stream_url": target.url}
            refused_dial = await client.post("/calls", json=dial)
            assert refused_dial.status_code == 429 and refused_dial.json()["errors"][0]["code"] == "10011"
            # A refused command leaves no trace: no call was created, no client_state noted.
            assert set(emulator.store().calls) == {"v3:first", "v3:second"}
            assert emulator.store().calls["v3:second"].client_state is None
            await client.post("/calls/v3:first/actions/streaming_stop", json={})
        await target.wait_closed()
        await emulator.state.runtime.wait_idle()
        assert (await start_stream(emulator, body, "v3:third")).status_code == 200


async def test_a_request_body_over_the_limit_is_answered_413_in_the_telnyx_envelope():
    async with run_emulator(emulator_settings(max_body_bytes=1000)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            padding = {"stream_url": "ws://127.0.0.1:1/x", "client_state": "aGk=", "pad": "x" * 2000}
            for path in ("/v2/calls/v3:big/actions/streaming_start", "/_emulator/calls", "/v2/calls"):
                response = await client.post(path, json=padding)
                assert response.status_code == 413, path
                (error,) = response.json()["errors"]
                assert error["title"] == "Request body too large" and "1000 bytes" in error["detail"]

            # Just under the limit is an ordinary request.
            fits = await client.post("/v2/calls/v3:small/actions/streaming_stop", json={"pad": "x" * 900})
            assert fits.status_code == 422 and fits.json()["errors"][0]["code"] == "90048"
        # The refused bodies were not journaled; the one that fit was.
        paths = [entry.path for entry in emulator.state.namespaces.get("test-key").journal]
        assert paths == ["/v2/calls/v3:small/actions/streaming_stop"]

        # A declared 100 MB body is refused from its headers alone, before the emulator reads any of it.
        status, body = await raw_post(emulator, b"Content-Length: 100000000", b"{")
        assert status == 413 and body["errors"][0]["title"] == "Request body too large"
        # Without a Content-Length (chunked) the body is counted as it arrives.
        chunks = b"".join(b"64\r\n" + b" " * 100 + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
        status, body = await raw_post(emulator, b"Transfer-Encoding: chunked", chunks)
        assert status == 413 and body["errors"][0]["code"] == "10015"


async def raw_post(emulator: RunningEmulator, header: bytes, body: bytes) -> tuple[int, Any]:
    """POST over a bare socket, so the test controls exactly which bytes are sent before the answer."""
    host, port = emulator.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = b"POST /v2/calls HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\n"
        writer.write(head + b"Content-Type: application/json\r\n" + header + b"\r\n\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(timeout(5)):
            answer = await reader.readuntil(b"\r\n\r\n")
            lines = answer.split(b"\r\n")
            length = int(next(h for h in lines if h.lower().startswith(b"content-length")).split(b":")[1])
            return int(lines[0].split()[1]), json.loads(await reader.readexactly(length))
    finally:
        writer.close()
        await writer.wait_closed()


async def test_handshake_headers_never_reach_the_log_in_clear(caplog):
    # The stream URL is logged with its query values and user info masked: secrets live there.
    secret_url_target = WsReceiver()
    async with secret_url_target.running() as target, run_emulator() as emulator:
        url = target.url.replace("ws://", "ws://user:hunter2@") + "?token=s3cret&lang=en"
        with caplog.at_level("INFO"):
            body = {"stream_url": url, "stream_auth_token": "tok-123"}
            assert (await start_stream(emulator, body, "v3:masked")).status_code == 200
            await target.wait_closed()
            await emulator.state.runtime.wait_idle()
        assert target.connections[0].path == "/stream?token=s3cret&lang=en"  # the target gets it all
        text = caplog.text
        assert "/stream?token=***&lang=***" in text
        assert "s3cret" not in text and "hunter2" not in text and "tok-123" not in text


async def test_a_target_that_stops_reading_before_a_short_call_ends_is_reported_as_such_not_completed():
    # The whole call fits in the kernel's buffers, so no send ever blocks: only the unanswered close tells.
    settings = emulator_settings(scenario="tone", stream_send_timeout=0.5)
    async with WebhookReceiver().running() as webhooks, run_emulator(settings.replace(webhook_url=webhooks.url)) as emu:
        async with ws_target(never_read) as url:
            event, record = await check_fault(emu, webhooks, url, "v3:short-unread")
    assert event["event_type"] == "streaming.failed" and event["payload"]["failure_reason"] == "send_timeout"
    assert record.end_reason == "send_timeout" and "read nothing" in (record.error or "")
