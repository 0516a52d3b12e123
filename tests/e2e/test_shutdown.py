"""Graceful shutdown of the real command: ``python -m emulator serve`` in a subprocess, stopped with a
signal while it streams to a real target and delivers webhooks to a real receiver."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from emulator import cli
from tests.receivers import STALL, WebhookReceiver
from tests.servers import TEST_SIGNING_KEY, WsReceiver, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def emulator_process(*args: str, **env: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``python -m emulator serve`` on a free port; yields the process and its base URL once it answers."""
    port = free_port()
    # The test's own key and CA folder: nothing is written to the home folder.
    certs = os.path.join(tempfile.gettempdir(), "telnyx-emulator-test-certs")
    environ = {**os.environ, "TELNYX_EMULATOR_SIGNING_KEY": TEST_SIGNING_KEY, "TELNYX_EMULATOR_CERT_DIR": certs, **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulator",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *args,
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C sees it (with its media workers)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(timeout(20)), httpx.AsyncClient() as client:
            while True:  # nothing announces readiness but the port answering
                if process.returncode is not None:
                    raise RuntimeError(f"emulator exited with {process.returncode} during start-up")
                try:
                    await client.get(f"{url}/openapi.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def start_stream(url: str, stream_url: str, call: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        response = await client.post(f"/v2/calls/{call}/actions/streaming_start", json={"stream_url": stream_url})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("sig", "media_workers"),
    [(signal.SIGTERM, "0"), (signal.SIGINT, "0"), (signal.SIGINT, "2")],
    ids=["SIGTERM", "SIGINT", "Ctrl-C-to-the-group-with-media-workers"],
)
async def test_a_signal_stops_every_stream_with_stop_and_1000_and_exits_0(sig, media_workers):
    async with WebhookReceiver().running() as webhooks, WsReceiver().running() as target:
        options = ("--speed", "1", "--webhook-url", webhooks.url, "--media-workers", media_workers)
        async with emulator_process(*options) as (process, url):
            for call in ("v3:one", "v3:two"):
                await start_stream(url, target.url, call)
            await target.wait_for(
                lambda: len(target.connections) == 2 and all(c.of("media") for c in target.connections)
            )
            if media_workers == "0":
                process.send_signal(sig)
            else:  # the workers get it too, and leave the shutdown to the main process
                os.killpg(process.pid, sig)
            async with asyncio.timeout(timeout(10)):
                status = await process.wait()
            stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert status == 0, stderr
        for index in (0, 1):
            conn = await target.wait_closed(index)
            assert conn.events()[-1] == "stop" and conn.close_code == 1000
        # The streams' last webhooks were delivered before the process ended.
        stopped = [
            b["data"]["payload"]["call_control_id"]
            for b in webhooks.bodies()
            if b["data"]["event_type"] == "streaming.stopped"
        ]
        assert sorted(stopped) == ["v3:one", "v3:two"]


async def test_webhooks_stuck_in_flight_do_not_hold_the_shutdown_past_its_grace():
    # Every webhook hangs unanswered, well past the webhook timeout: only the grace bounds the exit.
    async with WebhookReceiver(responses=lambda request: STALL).running() as webhooks, WsReceiver().running() as target:
        env = {"TELNYX_EMULATOR_WEBHOOK_TIMEOUT": "30"}
        args = ("--speed", "1", "--webhook-url", webhooks.url, "--shutdown-grace", "1")
        async with emulator_process(*args, **env) as (process, url):
            await start_stream(url, target.url, "v3:stuck")
            await webhooks.wait_for(1)  # streaming.started is in flight
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(timeout(10)):
                status = await process.wait()
            elapsed = loop.time() - signalled
            stderr = (await process.stderr.read()).decode() if process.stderr else ""
        assert status == 0, stderr
        assert elapsed < 1 + 1 + 2  # stream grace + webhook grace + start-up of the interpreter's exit
        # What was left undelivered is said, not silently lost.
        assert "queued event(s) dropped" in stderr or "not delivered at shutdown" in stderr
        conn = await target.wait_closed()
        assert conn.events()[-1] == "stop" and conn.close_code == 1000


class FakeSocket:
    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)

    def getsockname(self) -> tuple[str, int]:
        return self.address


@pytest.mark.parametrize(
    ("host", "keys", "warned"),
    [("0.0.0.0", [], True), ("192.0.2.1", [], True), ("0.0.0.0", ["--api-key", "k"], False), ("127.0.0.1", [], False)],
)
def test_binding_beyond_loopback_without_api_keys_warns_loudly(monkeypatch, caplog, tmp_path, host, keys, warned):
    # No socket is bound: the server's run is replaced, only the start-up checks run.
    monkeypatch.setattr(cli.GracefulServer, "run", lambda self, sockets=None: None)
    monkeypatch.setattr(cli, "_bind", lambda host, port: FakeSocket(host, port))
    env = {"TELNYX_EMULATOR_SIGNING_KEY": TEST_SIGNING_KEY, "TELNYX_EMULATOR_CERT_DIR": str(tmp_path)}
    with caplog.at_level(logging.WARNING):
        cli.main(["serve", "--host", host, *keys], environ=env)
    warnings = [r.getMessage() for r in caplog.records if "without --api-key" in r.getMessage()]
    assert bool(warnings) == warned
    if warned:
        assert host in warnings[0] and caplog.records[0].levelno == logging.WARNING
