"""What the dashboard reads, without a browser: its files (served with no key, under a strict content security
policy), a call's live levels (server-sent events), a stream's markers, and the brief call list's times. A real
emulator under uvicorn, a real WebSocket bot sending marks and clears back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from emulator.api.dashboard import dashboard_url
from tests.contract import assert_documented
from tests.e2e.bots import RTP, bot, frames_seen, mark, scenario_file, start
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
TONE_THEN_QUIET = "inbound:\n  - tone: {frequency: 440, ms: 300, level: -6}\n  - silence: {ms: 200}\n"


async def read_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """Every message of a server-sent event stream, until it ends."""
    messages: list[tuple[str, Any]] = []
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:") and name is not None:
            messages.append((name, json.loads(line[5:])))
    return messages


async def test_the_page_and_its_files_load_without_a_key_and_allow_nothing_from_elsewhere():
    settings = emulator_settings(api_keys=frozenset({"secret"}))
    async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url) as client:
        page = await client.get("/_emulator/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert (await client.get("/_emulator/ui/")).text == page.text
        script = await client.get("/_emulator/ui/main.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        missing = await client.get("/_emulator/ui/nothing.js")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "10005"
        # What the page reads needs the key, as the rest of the control plane does.
        assert (await client.get("/_emulator/calls?view=brief")).status_code == 401
        landing = await client.get("/")
        assert 'href="/_emulator/ui"' in landing.text


def test_the_banner_link_carries_the_key_the_app_would_use_in_its_fragment():
    base = "http://127.0.0.1:8000"
    assert dashboard_url(base, {"b-key", "a key"}, {}) == f"{base}/_emulator/ui#key=a%20key"
    assert dashboard_url(base, set(), {"TELNYX_API_KEY": "KEY01"}) == f"{base}/_emulator/ui#key=KEY01"
    assert dashboard_url(base, set(), {}) == f"{base}/_emulator/ui#key=emulator"


async def test_levels_give_every_frame_of_the_call_then_end_and_markers_place_the_caller_and_the_apps_marks(
    tmp_path,
):
    async def app(ws, conn):
        await frames_seen(conn, 6)
        await ws.send(mark("greeting"))
        await frames_seen(conn, 12)
        await ws.send(json.dumps({"event": "clear"}))

    # In real time: the bot's mark and clear arrive while the caller's half second of media is being sent.
    settings = emulator_settings(speed=1, scenario=scenario_file(tmp_path, TONE_THEN_QUIET))
    async with bot(app).running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            await start(emulator, target, RTP)
            call = (await client.get("/_emulator/calls/v3:bot")).json()["data"]
            path = "/_emulator/calls/v3:bot/levels"
            async with asyncio.timeout(timeout(10)), client.stream("GET", path) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                messages = await read_events(response)
            await target.wait_closed(seconds=10)

            assert messages[-1] == ("end", {"call_control_id": "v3:bot"})
            levels = [data for name, data in messages if name == "level"]
            (stream_id,) = {data["stream_id"] for data in levels}
            assert stream_id == call["streams"][0]["stream_id"]
            inbound = [value for data in levels for value in data["inbound"]]
            # One peak per 20 ms frame, in order from the first: 300 ms of tone at -6 dBFS, then quiet.
            assert [data["from_ms"] for data in levels] == sorted(data["from_ms"] for data in levels)
            assert levels[0]["from_ms"] == 0 and len(inbound) == 25
            assert all(0.45 < value < 0.55 for value in inbound[:15]) and set(inbound[15:]) == {0.0}

            markers = await client.get(f"/_emulator/streams/{stream_id}/markers")
            assert_documented(markers, "/_emulator/streams/{stream_id}/markers")
            data = markers.json()["data"]
            assert data["caller"] == [{"at_ms": 0, "label": "sound"}]
            (greeting, clear) = data["app"]
            assert greeting["kind"] == "mark" and greeting["name"] == "greeting" and clear["kind"] == "clear"
            assert 0 < greeting["at_ms"] <= clear["at_ms"] <= 500

            unknown = await client.get("/_emulator/calls/v3:nobody/levels")
            assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "10005"


async def test_the_brief_list_has_the_scenario_and_when_each_call_began_and_ended():
    async with run_emulator(emulator_settings()) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            created = await client.post(
                "/_emulator/calls", json={"from": "+13125550111", "to": "+13125550122", "scenario": "tone"}
            )
            call_id = created.json()["data"]["call_control_id"]
            response = await client.get("/_emulator/calls?view=brief")
            assert_documented(response, "/_emulator/calls")
            (brief,) = response.json()["data"]
            assert brief["scenario"] == "tone" and brief["created_at"].endswith("Z") and brief["ended_at"] is None
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
            (brief,) = (await client.get("/_emulator/calls?view=brief")).json()["data"]
            assert brief["state"] == "ended" and brief["ended_at"] >= brief["created_at"]
