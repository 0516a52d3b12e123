"""Scripted callers that take turns with a real bot: wait_for, barge-in, and hanging up."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import numpy as np
import pytest

from emulator.media import codecs
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
SILENT = base64.b64encode(b"\xff" * 160).decode()


def inbound(conn: Connection) -> list[str]:
    return [m["media"]["payload"] for m in conn.of("media") if m["media"]["track"] == "inbound"]


def spoken_runs(conn: Connection) -> list[tuple[int, int]]:
    """(first, last) inbound frame index of each stretch of non-silent caller audio."""
    runs: list[tuple[int, int]] = []
    for i, payload in enumerate(inbound(conn)):
        if payload == SILENT:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


async def frames_seen(conn: Connection, n: int) -> None:
    async with asyncio.timeout(5):
        while len(inbound(conn)) < n:
            await asyncio.sleep(0.005)


def reply(ms: int) -> str:
    pcm = np.full(8 * ms, 2000, dtype=np.int16)
    return json.dumps({"event": "media", "media": {"payload": base64.b64encode(codecs.encode_ulaw(pcm)).decode()}})


async def run_scenario(tmp_path, yaml_text, bot_script, *, speed=4, hooks=None):
    (tmp_path / "turns.yaml").write_text(yaml_text)
    settings = emulator_settings(speed=speed, scenario_dir=tmp_path, scenario="turns")
    if hooks is not None:
        settings = settings.replace(webhook_url=hooks.url)

    async def on_connect(ws, conn):
        asyncio.get_running_loop().create_task(bot_script(ws, conn))

    async with WsReceiver(on_connect).running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.api, headers=AUTH) as client:
            body = {"stream_url": target.url, "stream_bidirectional_mode": "rtp", "stream_track": "both_tracks"}
            response = await client.post("/calls/v3:turns/actions/streaming_start", json=body)
            assert response.status_code == 200
        conn = await target.wait_closed(seconds=15)
        await emulator.state.runtime.wait_idle()
        (record,) = emulator.store().calls["v3:turns"].streams.values()
        return conn, record


async def test_the_caller_waits_until_the_bot_has_finished_speaking(tmp_path):
    scenario = """
inbound:
  - tone: {frequency: 440, ms: 200}
  - wait_for: {event: app_audio_end, silence_ms: 200, timeout_ms: 5000}
  - tone: {frequency: 660, ms: 200}
"""
    replied_at: list[int] = []

    async def bot(ws, conn):
        await frames_seen(conn, 12)  # the caller's 10-frame question is over
        replied_at.append(len(inbound(conn)))
        await ws.send(reply(600))  # 30 frames

    conn, record = await run_scenario(tmp_path, scenario, bot)
    (question, answer_back) = spoken_runs(conn)
    assert question == (0, 9)
    # The bot played 30 frames from about replied_at; the caller then waited 200 ms (10 frames).
    assert answer_back[0] >= replied_at[0] + 30 + 10
    assert answer_back[0] <= replied_at[0] + 30 + 10 + 4
    assert answer_back[1] - answer_back[0] == 9 and record.end_reason == "completed"


async def test_barge_in_the_caller_talks_over_the_bot(tmp_path):
    scenario = """
inbound:
  - tone: {frequency: 440, ms: 100}
  - wait_for: {event: app_audio_start, after_ms: 200, timeout_ms: 5000}
  - tone: {frequency: 660, ms: 400}
"""
    replied_at: list[int] = []

    async def bot(ws, conn):
        await frames_seen(conn, 8)
        replied_at.append(len(inbound(conn)))
        await ws.send(reply(2000))  # a long answer the caller interrupts

    conn, _ = await run_scenario(tmp_path, scenario, bot)
    _, interruption = spoken_runs(conn)
    assert replied_at[0] + 10 <= interruption[0] <= replied_at[0] + 10 + 4
    # The bot was still talking when the caller barged in.
    outbound = [m["media"]["payload"] for m in conn.of("media") if m["media"]["track"] == "outbound"]
    assert outbound[interruption[0]] != SILENT


async def test_a_scripted_hangup_ends_the_call_from_the_callers_side(tmp_path):
    scenario = """
inbound:
  - tone: {frequency: 440, ms: 300}
  - hangup: {}
"""

    async def quiet_bot(ws, conn):
        return None

    async with WebhookReceiver().running() as hooks:
        conn, record = await run_scenario(tmp_path, scenario, quiet_bot, speed=0, hooks=hooks)
        await hooks.wait_until(lambda: "streaming.stopped" in [r.event_type for r in hooks.requests])
        events = [r.event_type for r in hooks.requests]
        assert events == ["streaming.started", "call.hangup", "streaming.stopped"]
        hangup = hooks.requests[1].json["data"]["payload"]
        assert (hangup["hangup_cause"], hangup["hangup_source"]) == ("normal_clearing", "caller")
    assert len(inbound(conn)) == 15 and conn.events()[-1] == "stop" and conn.close_code == 1000
    assert record.end_reason == "hangup" and record.call.state == "ended"


async def test_a_wait_that_times_out_with_fail_ends_the_stream_naming_the_step(tmp_path):
    scenario = """
inbound:
  - tone: {frequency: 440, ms: 100}
  - wait_for: {mark: bot-done, timeout_ms: 300, on_timeout: fail}
  - tone: {frequency: 660, ms: 100}
"""

    async def quiet_bot(ws, conn):
        return None

    conn, record = await run_scenario(tmp_path, scenario, quiet_bot, speed=0)
    assert len(inbound(conn)) == 5 + 15 and conn.events()[-1] == "stop"
    assert record.end_reason == "script_failed" and "turns.yaml:4" in record.error and "bot-done" in record.error


async def test_a_wait_for_a_mark_resumes_when_the_mark_is_echoed(tmp_path):
    scenario = """
inbound:
  - tone: {frequency: 440, ms: 100}
  - wait_for: {mark: said-it, timeout_ms: 5000}
  - tone: {frequency: 660, ms: 100}
"""

    async def bot(ws, conn):
        await frames_seen(conn, 6)
        await ws.send(reply(200))
        await ws.send(json.dumps({"event": "mark", "mark": {"name": "said-it"}}))

    conn, record = await run_scenario(tmp_path, scenario, bot)
    marks = [i for i, m in enumerate(conn.messages) if m["event"] == "mark"]
    first_after = next(i for i, p in enumerate(inbound(conn)) if i > 5 and p != SILENT)
    frames_before_mark = sum(
        1 for m in conn.messages[: marks[0]] if m["event"] == "media" and m["media"]["track"] == "inbound"
    )
    assert first_after == frames_before_mark and record.end_reason == "completed"
