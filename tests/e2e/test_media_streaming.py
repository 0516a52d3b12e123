"""streaming_start end to end: real emulator under uvicorn, real WebSocket target."""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from tests.servers import WsReceiver, emulator_settings, run_emulator
from tests.unit.fake_clock import FakeClock

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}


async def start_stream(emulator, body, call_control_id="v3:test-call") -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
        return await client.post(f"/calls/{call_control_id}/actions/streaming_start", json=body)


def payloads(conn, track="inbound") -> list[bytes]:
    return [base64.b64decode(m["media"]["payload"]) for m in conn.of("media") if m["media"]["track"] == track]


async def test_streaming_start_streams_the_default_scenario_and_closes_1000():
    async with WsReceiver().running() as target, run_emulator() as emulator:
        response = await start_stream(emulator, {"stream_url": target.url, "stream_track": "both_tracks"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"data": {"result": "ok"}}

        conn = await target.wait_closed()
        assert conn.close_code == 1000
        events = conn.events()
        assert events[0] == "connected" and events[1] == "start" and events[-1] == "stop"
        assert set(events[2:-1]) <= {"media", "dtmf"}
        assert conn.messages[0] == {"event": "connected", "version": "1.0.0"}

        start = conn.messages[1]
        stream_id = start["stream_id"]
        assert uuid.UUID(stream_id)
        assert start["sequence_number"] == "1"
        assert start["start"]["call_control_id"] == "v3:test-call"
        assert start["start"]["media_format"] == {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}
        assert start["start"]["custom_parameters"] == {}
        assert {"user_id", "call_session_id", "from", "to"} <= set(start["start"])

        numbers = [int(m["sequence_number"]) for m in conn.messages[1:]]
        assert numbers == list(range(1, len(numbers) + 1))
        assert all(m["stream_id"] == stream_id for m in conn.messages[1:])
        stop = conn.messages[-1]
        assert stop["stop"] == {"user_id": start["start"]["user_id"], "call_control_id": "v3:test-call"}

        for track in ("inbound", "outbound"):
            media = [m["media"] for m in conn.of("media") if m["media"]["track"] == track]
            assert [m["chunk"] for m in media] == [str(i) for i in range(1, len(media) + 1)]
            assert [m["timestamp"] for m in media] == [str(20 * i) for i in range(len(media))]
            assert all(len(p) == 160 for p in payloads(conn, track))
        state = emulator.state
        media_ = state.library.media(state.library.default, "PCMU")
        assert len(conn.of("media")) == 2 * media_.nominal_frames
        # The default scenario presses keys: each arrives as a dtmf frame.
        assert [m["dtmf"]["digit"] for m in conn.of("dtmf")] == list(media_.nominal_dtmf) == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("codec", "size", "rate"),
    [("PCMU", 160, 8000), ("PCMA", 160, 8000), ("G722", 160, 16000), ("L16", 640, 16000)],
)
async def test_each_codec_streams_its_frame_size_and_the_scenario_tone(codec, size, rate):
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=0, scenario="tone")) as emulator:
        response = await start_stream(emulator, {"stream_url": target.url, "stream_codec": codec})
        assert response.status_code == 200, response.text
        conn = await target.wait_closed()
        assert conn.messages[1]["start"]["media_format"] == {"encoding": codec, "sample_rate": rate, "channels": 1}
        frames = payloads(conn)
        assert frames and all(len(p) == size for p in frames)
        assert {m["media"]["track"] for m in conn.of("media")} == {"inbound"}
        pcm = codecs.decode(codec, b"".join(frames)).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
        peak_hz = np.argmax(spectrum) * rate / len(pcm)
        assert abs(peak_hz - 1000) < 5


async def test_outbound_track_streams_only_outbound_frames():
    async with WsReceiver().running() as target, run_emulator() as emulator:
        await start_stream(emulator, {"stream_url": target.url, "stream_track": "outbound_track"})
        conn = await target.wait_closed()
        assert {m["media"]["track"] for m in conn.of("media")} == {"outbound"}


async def test_auth_token_goes_in_the_handshake_header_and_the_connected_frame():
    body = {
        "stream_url": "",
        "stream_auth_token": "s3cret-token",
        "client_state": base64.b64encode(b"hello").decode(),
        "custom_parameters": [{"name": "customer_id", "value": "c-123"}, {"name": "lang", "value": "en"}],
    }
    async with WsReceiver().running() as target, run_emulator() as emulator:
        body["stream_url"] = target.url + "/secret-path?x=1"
        assert (await start_stream(emulator, body)).status_code == 200
        conn = await target.wait_closed()
        assert conn.path == "/stream/secret-path?x=1"
        assert conn.headers["x-telnyx-streaming-auth-token"] == "s3cret-token"
        assert conn.messages[0] == {
            "event": "connected",
            "version": "1.0.0",
            "connected": {"x-telnyx-streaming-auth-token": "s3cret-token"},
        }
        start = conn.messages[1]["start"]
        assert start["client_state"] == body["client_state"]
        assert start["custom_parameters"] == {"customer_id": "c-123", "lang": "en"}


async def test_concurrent_duplicates_of_one_command_id_start_one_stream():
    async with WsReceiver().running() as target, run_emulator() as emulator:
        body = {"stream_url": target.url, "command_id": "cmd-1"}
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            url = "/calls/v3:dup/actions/streaming_start"
            responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(25)))
            assert [r.status_code for r in responses] == [200] * 25
            assert all(r.json() == {"data": {"result": "ok"}} for r in responses)
            await target.wait_closed()
            await emulator.state.runtime.wait_idle()
            assert len(target.connections) == 1
            # The same command_id on another call is a different command.
            assert (await client.post("/calls/v3:other/actions/streaming_start", json=body)).status_code == 200
            await target.wait_closed(1)
            assert len(emulator.store().calls["v3:dup"].streams) == 1


async def test_a_refused_stream_target_is_recorded_and_the_emulator_keeps_serving():
    async with WsReceiver().running() as target, run_emulator() as emulator:
        closed_port = target.server.sockets[0].getsockname()[1]
    async with WsReceiver().running() as target, run_emulator() as emulator:
        response = await start_stream(emulator, {"stream_url": f"ws://127.0.0.1:{closed_port}/x"}, "v3:refused")
        assert response.status_code == 200
        await emulator.state.runtime.wait_idle()
        (record,) = emulator.store().calls["v3:refused"].streams.values()
        assert record.state == "failed" and record.end_reason == "connection_failed"
        assert "Connect" in record.error or "refused" in record.error.lower()
        assert emulator.state.runtime.failures == []
        assert (await start_stream(emulator, {"stream_url": target.url})).status_code == 200
        assert (await target.wait_closed()).close_code == 1000


async def test_streaming_stop_ends_the_stream_with_stop_and_1000():
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=1)) as emulator:
        await start_stream(emulator, {"stream_url": target.url}, "v3:stop-me")
        conn = await target.wait_connection()
        await target.wait_for(lambda: len(conn.of("media")) >= 3)
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            response = await client.post("/calls/v3:stop-me/actions/streaming_stop", json={})
            assert response.json() == {"data": {"result": "ok"}}
            conn = await target.wait_closed()
            assert conn.events()[-1] == "stop" and conn.close_code == 1000
            again = await client.post("/calls/v3:stop-me/actions/streaming_stop", json={})
            assert again.status_code == 422 and again.json()["errors"][0]["code"] == "90048"


async def test_frames_follow_the_real_time_schedule_at_speed_one():
    # Only the lower bound is asserted: frames can never leave before their schedule, so this holds
    # on a loaded machine too. Upper bounds (jitter, drift) are measured in bench/pacing.py.
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=4, scenario="tone")) as emulator:
        await start_stream(emulator, {"stream_url": target.url})
        conn = await target.wait_closed(seconds=10)
        media_at = [t for m, t in zip(conn.messages, conn.arrival, strict=True) if m["event"] == "media"]
        assert media_at[-1] - media_at[0] >= (len(media_at) - 1) * 0.020 / 4 * 0.98


class SteppedClock(FakeClock):
    """Media time without real waiting: each wait jumps the clock to its deadline. ``stall`` adds a hiccup
    after the n-th wait, as a busy machine would, so the test sees exactly which deadlines are asked for."""

    def __init__(self, stall: dict[int, float]) -> None:
        super().__init__()
        self.now = 1000.0
        self.stall = dict(stall)
        self.waits: list[float] = []

    def wake_at(self, deadline: float) -> asyncio.Future[None]:
        self.waits.append(deadline)
        self.now = max(self.now, deadline) + self.stall.pop(len(self.waits), 0.0)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        woken.set_result(None)
        return woken

    def call_at(self, deadline: float, callback) -> None:
        self.wake_at(deadline)
        asyncio.get_running_loop().call_soon(callback)


async def test_a_late_frame_does_not_shift_the_ones_after_it():
    # Frame 10 wakes 105 ms late: frames 11-15 are already due and leave at once (no wait), and from
    # frame 16 on every deadline is still t0 + n * 20 ms: the schedule is absolute, nothing drifts.
    clock = SteppedClock(stall={10: 0.105})
    async with (
        WsReceiver().running() as target,
        run_emulator(emulator_settings(speed=1, scenario="tone"), clock=clock) as emulator,
    ):
        await start_stream(emulator, {"stream_url": target.url})
        conn = await target.wait_closed()
        await emulator.state.runtime.wait_idle()
    frames = len(conn.of("media"))
    assert frames == 100  # the tone scenario: 2 s
    t0 = 1000.0
    ticks = [round((deadline - t0) / 0.020, 6) for deadline in clock.waits]
    assert all(tick == int(tick) for tick in ticks), ticks  # every deadline on the 20 ms grid of t0
    # The last wait is for the `stop` frame, one period after the last media frame.
    assert ticks[:10] == list(range(1, 11)) and ticks[10] == 16 and ticks[-1] == frames
    assert ticks == sorted(set(ticks))
    (record,) = emulator.store().calls["v3:test-call"].streams.values()
    assert record.max_lateness == pytest.approx(0.105, abs=1e-6)  # frame 10 woke 105 ms late


async def test_wss_target_with_a_trusted_local_ca(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    async with WsReceiver().running(server_context) as target:
        assert target.url.startswith("wss://localhost:")
        async with run_emulator(emulator_settings(speed=0, scenario="tone", ca_file=ca_file)) as emulator:
            await start_stream(emulator, {"stream_url": target.url})
            assert (await target.wait_closed()).close_code == 1000
        # Without the CA the certificate is rejected and the stream fails to connect.
        async with run_emulator(emulator_settings(speed=0, scenario="tone")) as emulator:
            await start_stream(emulator, {"stream_url": target.url}, "v3:untrusted")
            await emulator.state.runtime.wait_idle()
            (record,) = emulator.store().calls["v3:untrusted"].streams.values()
            assert record.end_reason == "connection_failed" and "CERTIFICATE" in record.error.upper()
            assert len(target.connections) == 1
        # --insecure skips verification altogether, for self-signed local servers.
        async with run_emulator(emulator_settings(speed=0, scenario="tone", insecure_tls=True)) as emulator:
            await start_stream(emulator, {"stream_url": target.url}, "v3:insecure")
            assert (await target.wait_closed(1)).close_code == 1000


async def test_emulator_shutdown_stops_running_streams_cleanly():
    async with WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=1)) as emulator:
            await start_stream(emulator, {"stream_url": target.url})
            conn = await target.wait_connection()
            await target.wait_for(lambda: len(conn.of("media")) >= 2)
        conn = await target.wait_closed(seconds=5)
        assert conn.events()[-1] == "stop" and conn.close_code == 1000
