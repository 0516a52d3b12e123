"""--media-workers: streams' WebSockets held by worker processes. What the app receives and what it sends back
are the same as with the stream in the main process; a worker that dies fails its streams and is replaced.
(tests/e2e/test_robustness.py runs every stream-target fault both ways too.)"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys

import httpx
import numpy as np
import pytest
from websockets.asyncio.server import serve

from emulator.media import codecs
from emulator.media.workers import MediaWorkers
from tests.e2e.bots import RTP, bot, frames_seen, mark, media, session_of, start
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}


async def stream(emulator, url: str, call: str, **body) -> None:
    async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
        response = await client.post(f"/calls/{call}/actions/streaming_start", json={"stream_url": url, **body})
        assert response.status_code == 200, response.text


def comparable(message: dict) -> dict:
    """A message less what differs between any two runs: ids and wall-clock times."""
    message = {k: v for k, v in message.items() if k not in ("stream_id", "occurred_at")}
    if "start" in message:
        message["start"] = {k: v for k, v in message["start"].items() if k != "call_session_id"}
    return message


async def test_the_app_receives_the_same_messages_from_a_worker_as_from_the_main_process():
    received = []
    for workers in (0, 2):
        settings = emulator_settings(speed=0, scenario="default", media_workers=workers)
        async with WsReceiver().running() as target, run_emulator(settings) as emulator:
            await stream(emulator, target.url, "v3:same", stream_track="both_tracks", stream_codec="G722")
            conn = await target.wait_closed()
            assert conn.close_code == 1000
            received.append(conn.messages)
    plain, through_worker = (list(map(comparable, messages)) for messages in received)
    assert through_worker == plain  # the same counters, payloads, digits and stop
    assert [m["event"] for m in plain[:2]] == ["connected", "start"] and plain[-1]["event"] == "stop"
    assert len([m for m in plain if m["event"] == "media"]) > 100


async def test_the_apps_audio_and_marks_come_back_through_a_worker():
    tone = (8000 * np.sin(2 * np.pi * 500 * np.arange(16000) / 16000)).astype(np.int16)  # 1 s at 16 kHz

    async def speak(ws, conn):
        await frames_seen(conn, 2)
        for i in range(0, len(tone), 1600):
            await ws.send(media(codecs.encode_l16(tone[i : i + 1600])))
        await ws.send(mark("spoken"))
        await ws.send('{"event": "bogus"}')

    body = {**RTP, "stream_bidirectional_codec": "L16", "stream_bidirectional_sampling_rate": 16000}
    settings = emulator_settings(speed=4, scenario="silence", media_workers=1)
    async with bot(speak).running() as target, run_emulator(settings) as emulator:
        await start(emulator, target, body)
        conn = await target.wait_closed(seconds=10)
        record, recording = session_of(emulator)
    app, rate = recording.pcm("app")
    assert rate == 16000 and app.tobytes() == tone.tobytes()  # byte exact, through the worker's pipe
    assert [m["mark"]["name"] for m in conn.of("mark")] == ["spoken"]
    assert [m["payload"]["code"] for m in conn.of("error")] == [100003] and record.errors_sent == 1
    outbound = codecs.decode_ulaw(
        b"".join(base64.b64decode(m["media"]["payload"]) for m in conn.of("media") if m["media"]["track"] == "outbound")
    )
    assert np.abs(outbound.astype(np.float64)).max() > 3000  # the caller heard the app's tone
    assert conn.close_code == 1000


async def test_a_worker_that_dies_fails_its_streams_and_a_new_one_takes_its_place():
    settings = emulator_settings(speed=1, scenario="stay-on-line", media_workers=1)
    async with (
        WebhookReceiver().running() as hooks,
        WsReceiver().running() as target,
        run_emulator(settings.replace(webhook_url=hooks.url)) as emulator,
    ):
        workers = emulator.state.runtime.workers
        assert workers is not None
        (first,) = workers.workers
        await stream(emulator, target.url, "v3:doomed")
        conn = await target.wait_connection()
        await frames_seen(conn, 5)
        os.kill(first.process.pid, signal.SIGKILL)
        await hooks.wait_until(lambda: "streaming.failed" in [r.event_type for r in hooks.requests])
        failed = next(r.json["data"]["payload"] for r in hooks.requests if r.event_type == "streaming.failed")
        assert failed["failure_reason"] == "media_worker_lost" and failed["call_control_id"] == "v3:doomed"
        (record,) = emulator.store().calls["v3:doomed"].streams.values()
        assert record.state == "failed" and f"pid {first.process.pid}) exited with code -9" in (record.error or "")

        await stream(emulator, target.url, "v3:next")  # served by the worker that replaced it
        second = await target.wait_connection(1)
        await frames_seen(second, 5)
        (replacement,) = workers.workers
        assert replacement.process.pid != first.process.pid and workers.replaced == 1
    # Shutdown: the stream still running gets stop and a clean close through the new worker, which then exits.
    assert (await target.wait_closed(1)).close_code == 1000 and second.messages[-1]["event"] == "stop"
    assert replacement.process.returncode == 0


async def test_frames_through_a_worker_keep_the_20_ms_pace():
    settings = emulator_settings(speed=1, scenario="tone", media_workers=1)
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        await stream(emulator, target.url, "v3:paced")
        conn = await target.wait_closed()
    arrivals = [at for message, at in zip(conn.messages, conn.arrival, strict=True) if message["event"] == "media"]
    assert len(arrivals) == 100  # the tone scenario: 2 s
    span = arrivals[-1] - arrivals[0]
    assert 1.9 <= span <= 3.0, span  # 99 periods of 20 ms: paced, not flushed at once (a busy CI may run late)


async def test_a_connection_whose_app_floods_it_unread_still_closes():
    # The main process never reads this connection's messages (a stream stopped while it connected does not):
    # the worker's read credit runs out, and the close must still come back instead of waiting forever.
    flooded = asyncio.Event()

    async def flood(ws, conn):
        for _ in range(40):
            await ws.send(mark("unread"))
        flooded.set()

    pool = MediaWorkers(1)
    try:
        async with bot(flood).running() as target:
            await pool.start()
            connection = await pool.connect("s-flood", target.url, None, open_timeout=5, close_timeout=2)
            async with asyncio.timeout(timeout(5)):
                await flooded.wait()  # the app's 40 messages are on their way; nobody reads them here
            async with asyncio.timeout(timeout(5)):
                await connection.close(1000)
            assert connection.protocol.close_rcvd is not None and connection.protocol.close_rcvd.code == 1000
    finally:
        await pool.aclose()


async def test_a_worker_lost_while_its_stream_connects_fails_it_as_lost():
    dialled, release = asyncio.Event(), asyncio.Event()

    async def slow_handshake(connection, request):
        dialled.set()
        await release.wait()  # the handshake hangs until the test is done

    settings = emulator_settings(speed=1, scenario="stay-on-line", media_workers=1)
    async with (
        serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=slow_handshake) as server,
        run_emulator(settings) as emulator,
    ):
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
        (worker,) = emulator.state.runtime.workers.workers
        await stream(emulator, url, "v3:connecting")
        async with asyncio.timeout(timeout(5)):
            await dialled.wait()  # the worker is in the middle of the handshake
        os.kill(worker.process.pid, signal.SIGKILL)
        await emulator.state.runtime.wait_idle()
        (record,) = emulator.store().calls["v3:connecting"].streams.values()
        release.set()
    assert record.end_reason == "media_worker_lost" and "exited with code -9" in record.error


async def test_workers_that_keep_dying_as_they_start_leave_the_streams_to_the_main_process(monkeypatch, caplog):
    pool = MediaWorkers(1)

    async def broken_start() -> asyncio.subprocess.Process:  # a worker that cannot start (a broken install)
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", "raise SystemExit(3)", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )

    monkeypatch.setattr(pool, "_spawn", broken_start)
    try:
        await pool.start()
        async with asyncio.timeout(timeout(10)):  # two restarts, after 0.5 s and 1 s, then it gives up
            while not pool.broken:
                await asyncio.sleep(0.05)
        assert not pool.takes(0) and pool.replaced == 2
        assert "media workers keep exiting as they start: new streams run in the main process" in caplog.text
    finally:
        await pool.aclose()


async def test_when_no_worker_process_can_start_the_emulator_still_serves_streams_itself(monkeypatch, caplog):
    async def no_processes() -> asyncio.subprocess.Process:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(MediaWorkers, "_spawn", lambda self: no_processes())
    settings = emulator_settings(speed=0, scenario="tone", media_workers=2)
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        workers = emulator.state.runtime.workers
        assert workers is not None and workers.broken and not workers.takes(0)
        await stream(emulator, target.url, "v3:in-process")
        conn = await target.wait_closed()
    assert conn.close_code == 1000 and len(conn.of("media")) == 100  # streamed by the main process
    assert "cannot start a media worker: [Errno 11] Resource temporarily unavailable" in caplog.text
