"""The caller belongs to the call: one script per call from the answer, heard by any number of streams or none."""

from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from emulator.media.library import build_stream_media
from emulator.scenarios.cursor import render
from emulator.scenarios.loader import load_scenario
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
DTMF = "inbound:\n  - silence: {ms: 1000}\n  - dtmf: {digits: '42#', ms: 80, gap_ms: 80}\n  - silence: {ms: 200}\n"


def events(hooks: WebhookReceiver, event_type: str | None = None) -> list[dict]:
    return [r.json["data"] for r in hooks.requests if event_type is None or r.event_type == event_type]


async def ring_and_answer(client: httpx.AsyncClient, body: dict, scenario: str) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    call_id = created.json()["data"]["call_control_id"]
    assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json=body)).status_code == 200
    return call_id


@pytest.mark.parametrize("streams", [0, 1, 2])
async def test_dtmf_is_reported_once_per_digit_per_call_with_any_number_of_streams(tmp_path, streams):
    (tmp_path / "keys.yaml").write_text(DTMF)
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        # At speed 0 the caller would be done before a second stream could join: real time for that case.
        settings = emulator_settings(webhook_url=hooks.url, speed={0: 4, 1: 0, 2: 1}[streams])
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body = {"stream_url": target.url} if streams else {}
            call_id = await ring_and_answer(c, body, str(tmp_path / "keys.yaml"))
            if streams == 2:  # a second stream from the answer on: both hear the same caller
                await target.wait_connection(0)
                assert (await c.post(f"/v2/calls/{call_id}/actions/streaming_start", json=body)).status_code == 200
            await hooks.wait_until(lambda: bool(events(hooks, "call.hangup")), seconds=10)
            await emulator.state.runtime.wait_idle()
            digits = [e["payload"]["digit"] for e in events(hooks, "call.dtmf.received")]
            assert digits == ["4", "2", "#"]
            (hangup,) = events(hooks, "call.hangup")
            assert (hangup["payload"]["hangup_cause"], hangup["payload"]["hangup_source"]) == (
                "normal_clearing",
                "caller",
            )
            for i in range(streams):
                conn = await target.wait_closed(i)
                assert conn.events()[-1] == "stop" and conn.close_code == 1000
            for i in range(streams):  # every stream hears every key, from the one caller
                assert [f["dtmf"]["digit"] for f in (await target.wait_closed(i)).of("dtmf")] == ["4", "2", "#"]
            assert len(events(hooks, "streaming.stopped")) == streams
            kinds = [e["event_type"] for e in events(hooks)]
            assert kinds.index("call.hangup") > max(i for i, k in enumerate(kinds) if k == "call.dtmf.received")


async def test_a_hangup_step_hangs_up_a_call_without_a_stream(tmp_path):
    (tmp_path / "bye.yaml").write_text("inbound:\n  - silence: {ms: 100}\n  - hangup: {cause: user_busy}\n")
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=4)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring_and_answer(c, {}, str(tmp_path / "bye.yaml"))
                await hooks.wait_until(lambda: bool(events(hooks, "call.hangup")))
                (hangup,) = events(hooks, "call.hangup")
                assert hangup["payload"]["hangup_cause"] == "user_busy"
                status = (await c.get(f"/v2/calls/{call_id}")).json()["data"]
                assert status["is_alive"] is False


async def test_a_stream_started_mid_call_hears_the_caller_from_that_moment(tmp_path):
    # Ten 100 ms tones of rising pitch; a stream that joins later must hear the later ones, not tone 1 again.
    steps = "".join(f"  - tone: {{frequency: {300 + 100 * i}, ms: 100, level: -12}}\n" for i in range(10))
    (tmp_path / "rising.yaml").write_text("at_end: stay\ninbound:\n" + steps)
    async with WsReceiver().running() as target:
        async with run_emulator(emulator_settings(speed=1)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring_and_answer(c, {"stream_url": target.url}, str(tmp_path / "rising.yaml"))
                first = await target.wait_connection(0)
                await target.wait_for(lambda: len(first.of("media")) >= 25)  # half a second in
                body = {"stream_url": target.url}
                assert (await c.post(f"/v2/calls/{call_id}/actions/streaming_start", json=body)).status_code == 200
                second = await target.wait_connection(1)
                await target.wait_for(lambda: len(second.of("media")) >= 5)
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                await target.wait_closed(1)
    pcm = codecs.decode_ulaw(b"".join(base64.b64decode(m["media"]["payload"]) for m in second.of("media")[:5]))
    pitch = np.argmax(np.abs(np.fft.rfft(pcm))) * 8000 / len(pcm)
    assert pitch >= 700  # tone 5 or later (the first tone is 300 Hz)
    assert second.of("media")[0]["media"]["chunk"] == "1" and second.of("media")[0]["media"]["timestamp"] == "0"


async def test_g722_over_a_multi_segment_script_decodes_continuously_to_the_rendered_pcm(tmp_path):
    text = (
        "inbound:\n  - tone: {frequency: 440, ms: 500, level: -12}\n"
        "  - wait_for: {event: app_audio_start, timeout_ms: 200}\n"
        "  - tone: {frequency: 440, ms: 500, level: -12}\n"
    )
    (tmp_path / "g722.yaml").write_text(text)
    body = {"stream_url": "", "stream_codec": "G722"}
    async with WsReceiver().running() as target, run_emulator(emulator_settings()) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            body["stream_url"] = target.url
            await ring_and_answer(c, body, str(tmp_path / "g722.yaml"))
            conn = await target.wait_closed()
    encoded = b"".join(base64.b64decode(m["media"]["payload"]) for m in conn.of("media"))
    heard = codecs.Decoder("G722").decode(encoded)  # one decoder for the whole stream, as an app has
    rendered = render(build_stream_media(load_scenario(tmp_path / "g722.yaml"), "G722").script).pcm
    assert int(np.max(np.abs(heard.astype(np.int32)))) < 10_000  # -12 dBFS is ~8230; a desynced decoder clips
    assert abs(len(heard) - len(rendered)) <= 320
    # G.722's codec delay shifts the output by a few samples: align, then the error is small everywhere.
    n = min(len(heard), len(rendered)) - 64
    delay = min(range(32), key=lambda d: float(np.sum((heard[d : d + n].astype(float) - rendered[:n]) ** 2)))
    error = heard[delay : delay + n].astype(float) - rendered[:n]
    snr = 10 * np.log10(np.sum(rendered[:n].astype(float) ** 2) / np.sum(error**2))
    assert snr > 20, f"{snr:.1f} dB"


async def test_reset_stops_the_callers_of_forgotten_calls(tmp_path):
    (tmp_path / "stays.yaml").write_text("at_end: stay\ninbound:\n  - silence: {ms: 60000}\n")
    async with run_emulator(emulator_settings(speed=1)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await ring_and_answer(c, {}, str(tmp_path / "stays.yaml"))
            runtime = emulator.state.runtime
            assert len(runtime.runners) == 1
            assert (await c.post("/_emulator/reset")).status_code == 200
            async with asyncio.timeout(5):
                while runtime.runners:
                    await asyncio.sleep(0.01)
