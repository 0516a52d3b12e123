"""Conversation metrics of a real call, from its media timeline: the same figures with a stream listening (every
tick computed) and without (quiet stretches jumped over), read through the pytest plugin's helper."""

from __future__ import annotations

import base64
import json

import anyio
import httpx
import numpy as np
import pytest

from emulator.media import codecs
from emulator.testing.harness import TelnyxEmulator
from tests.e2e.bots import RTP, bot, frames_seen, media, scenario_file, start
from tests.servers import WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
# The caller talks for 400 ms; what the call plays to it (its scenario's outbound track, standing in for a bot
# whose timing is known) starts 300 ms after that. Then both are quiet for 1.5 s and the caller hangs up.
TIMED = """inbound:
  - tone: {frequency: 500, ms: 400}
  - silence: {ms: 2300}
outbound:
  - silence: {ms: 700}
  - tone: {frequency: 900, ms: 500}
"""
EXPECTED = {
    "media_ms": 2700,
    "first_audio_ms": 700,
    "turns": [{"start_ms": 0, "end_ms": 400, "response_ms": 300}],
    "unanswered_turns": 0,
    "talk_over_ms": 0,
    "barge_ins": [],
    "dead_air_ms": 1500,
    "max_buffered_ms": 0,
    "underruns": 0,
    "underrun_ms": 0,
}


async def final_metrics(client: httpx.AsyncClient, call: str) -> dict:
    """The metrics once the call has ended (the caller hangs up at the end of its script)."""
    with anyio.fail_after(timeout(10)):
        while (metrics := (await client.get(f"/_emulator/calls/{call}/metrics")).json()["data"])["is_alive"]:
            await anyio.sleep(0.02)  # polls a condition, bounded by fail_after
    return metrics


@pytest.mark.parametrize("streamed", [True, False])
async def test_response_time_first_audio_and_dead_air_of_a_call(tmp_path, streamed):
    (tmp_path / "timed.yaml").write_text(TIMED)
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=10)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            new = {"from": "+13125550111", "to": "+13125550122", "scenario": str(tmp_path / "timed.yaml")}
            call = (await c.post("/_emulator/calls", json=new)).json()["data"]["call_control_id"]
            answer = {"stream_url": target.url, "stream_track": "both_tracks"} if streamed else {}
            await c.post(f"/v2/calls/{call}/actions/answer", json=answer)
            metrics = await final_metrics(c, call)
            shown = (await c.get(f"/_emulator/calls/{call}")).json()["data"]["metrics"]
    assert metrics == {"call_control_id": call, "is_alive": False, **EXPECTED}
    assert shown == EXPECTED


def test_the_plugin_waits_for_the_end_and_returns_the_metrics(tmp_path):
    (tmp_path / "timed.yaml").write_text(TIMED)
    with TelnyxEmulator(speed=10) as emulator:
        call = emulator.control.incoming_call("+13125550111", "+13125550122", scenario=str(tmp_path / "timed.yaml"))
        with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.api_key}"}) as c:
            c.post(f"/v2/calls/{call['call_control_id']}/actions/answer", json={})
        metrics = emulator.wait_for_metrics(call["call_control_id"])
    assert metrics.turns[0].response_ms == 300 and metrics.first_audio_ms == 700 and not metrics.is_alive


BARGE_IN = """at_end: stay
inbound:
  - wait_for: {event: app_audio_start, after_ms: 500, timeout_ms: 8000}
  - tone: {frequency: 1000, ms: 600}
"""


async def test_a_bot_that_clears_when_the_caller_barges_in(tmp_path):
    """A bot sends 3 s of audio at once, and clears it as soon as it hears the caller speak over it."""

    async def speak_then_yield(ws, conn):
        await frames_seen(conn, 1)
        await ws.send(media(codecs.encode_ulaw(np.full(3 * 8000, 3000, dtype=np.int16))))
        seen = 0
        while True:  # the caller's first loud inbound frame: stop talking
            await frames_seen(conn, seen + 1)
            frames = conn.of("media")
            for frame in frames[seen:]:
                payload = codecs.decode_ulaw(base64.b64decode(frame["media"]["payload"]))
                if frame["media"]["track"] == "inbound" and np.abs(payload).max() > 500:
                    await ws.send(json.dumps({"event": "clear"}))
                    return
            seen = len(frames)

    settings = emulator_settings(speed=1, scenario=scenario_file(tmp_path, BARGE_IN))
    async with bot(speak_then_yield).running() as target, run_emulator(settings) as emulator:
        await start(emulator, target, RTP)
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            with anyio.fail_after(timeout(10)):
                while not (m := (await c.get("/_emulator/calls/v3:bot/metrics")).json()["data"])["barge_ins"] or (
                    m["barge_ins"][0]["yield_ms"] is None
                ):
                    await anyio.sleep(0.02)  # polls a condition, bounded by fail_after
            await c.post("/v2/calls/v3:bot/actions/hangup", json={})
    (barge,) = m["barge_ins"]
    assert barge["cleared"] is True and 0 < barge["yield_ms"] <= 300  # it heard the caller and stopped at once
    assert 500 <= barge["at_ms"] - m["first_audio_ms"] <= 540  # the caller's after_ms
    assert 2000 <= m["max_buffered_ms"] <= 3000 and m["talk_over_ms"] == barge["yield_ms"]


QUIET = """at_end: stay
inbound:
  - silence: {ms: 200}
"""


async def test_an_app_that_sends_slower_than_real_time_underruns(tmp_path):
    """One bot sends 20 ms of audio every 40 ms: its audio runs dry between chunks, and each gap is an underrun.
    Sent all at once, the same audio plays without a gap."""
    tone = codecs.encode_ulaw(np.full(160, 3000, dtype=np.int16))  # 20 ms at 8 kHz

    async def dribble(ws, conn):
        await frames_seen(conn, 1)
        for _ in range(10):
            await ws.send(media(tone))
            await anyio.sleep(0.04)  # the app's own pace under test: half real time

    async def burst(ws, conn):
        await frames_seen(conn, 1)
        await ws.send(media(tone * 10))

    results = {}
    for name, script in (("dribble", dribble), ("burst", burst)):
        settings = emulator_settings(speed=1, scenario=scenario_file(tmp_path, QUIET))
        async with bot(script).running() as target, run_emulator(settings) as emulator:
            await start(emulator, target, RTP)
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                with anyio.fail_after(timeout(10)):  # the last chunk has played, and its gap has passed
                    while (m := (await c.get("/_emulator/calls/v3:bot/metrics")).json()["data"])["media_ms"] < 1500:
                        await anyio.sleep(0.02)  # polls a condition, bounded by fail_after
                await c.post("/v2/calls/v3:bot/actions/hangup", json={})
        results[name] = m
    slow, fast = results["dribble"], results["burst"]
    assert 7 <= slow["underruns"] <= 9 and slow["underrun_ms"] >= 20 * slow["underruns"]
    assert fast["underruns"] == 0 and fast["underrun_ms"] == 0 and 160 <= fast["max_buffered_ms"] <= 180
