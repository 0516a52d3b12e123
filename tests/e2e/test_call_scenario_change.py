"""PUT /_emulator/calls/{id}/scenario sets what the caller says until the answer: refused, in Telnyx's envelope,
when it could no longer take effect."""

from __future__ import annotations

import httpx
import pytest

from tests.contract import assert_documented
from tests.e2e.bots import AUTH
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALLER, CALLEE = "+13125550111", "+13125550122"
SCENARIO_PATH = "/_emulator/calls/{call_control_id}/scenario"


def scenario_dir(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "short.yaml").write_text("inbound:\n  - tone: {frequency: 1000, ms: 100}\n")
    # A dialed callee rings for a minute: the dial's stream waits for the answer all test long.
    (folder / "long.yaml").write_text("callee: {ring_ms: 60000}\ninbound:\n  - silence: {ms: 60000}\n")
    return emulator_settings(speed=1, scenario_dir=folder, scenario="long")


async def put_scenario(client: httpx.AsyncClient, call_id: str, scenario: str) -> httpx.Response:
    return await client.put(f"/_emulator/calls/{call_id}/scenario", json={"scenario": scenario})


async def test_the_scenario_of_an_answered_call_cannot_change_and_one_set_before_the_answer_plays(tmp_path):
    async with WsReceiver().running() as target, run_emulator(scenario_dir(tmp_path)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            call = (await client.post("/_emulator/calls", json={"from": CALLER, "to": CALLEE})).json()["data"]
            call_id = call["call_control_id"]
            await client.post(f"/v2/calls/{call_id}/actions/answer", json={"stream_url": target.url})
            await target.wait_for(lambda: target.connections and target.connections[0].messages)

            refused = await put_scenario(client, call_id, "short")
            (error,) = assert_documented(refused, SCENARIO_PATH)["errors"]
            assert refused.status_code == 409 and error["source"] == {"pointer": "/scenario"}
            assert "since the call was answered" in error["detail"]
            assert (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]["scenario"] is None

            # The caller belongs to the call, not to its stream: stopping the stream changes nothing.
            await client.post(f"/v2/calls/{call_id}/actions/streaming_stop", json={})
            await target.wait_closed(0)
            assert (await put_scenario(client, call_id, "short")).status_code == 409

            ringing = (await client.post("/_emulator/calls", json={"from": CALLER, "to": CALLEE})).json()["data"]
            changed = await put_scenario(client, ringing["call_control_id"], "short")
            assert assert_documented(changed, SCENARIO_PATH)["data"]["scenario"] == "short"
            body = {"stream_url": target.url}
            await client.post(f"/v2/calls/{ringing['call_control_id']}/actions/answer", json=body)
            assert len((await target.wait_closed(1)).of("media")) == 5  # the 100 ms scenario, then the caller hangs up


async def test_a_dialed_call_whose_stream_waits_for_the_answer_refuses_the_change(tmp_path):
    async with run_emulator(scenario_dir(tmp_path)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            body = {"connection_id": "1", "from": CALLER, "to": CALLEE, "stream_url": "ws://127.0.0.1:9/never"}
            call_id = (await client.post("/v2/calls", json=body)).json()["data"]["call_control_id"]
            refused = await put_scenario(client, call_id, "short")
            assert refused.status_code == 409
            assert "will play scenario 'long' once the call is answered" in refused.json()["errors"][0]["detail"]


async def test_an_ended_call_is_refused_like_any_command(tmp_path):
    async with run_emulator(scenario_dir(tmp_path)) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            call = (await client.post("/_emulator/calls", json={"from": CALLER, "to": CALLEE})).json()["data"]
            call_id = call["call_control_id"]
            assert (await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})).status_code == 200
            refused = await put_scenario(client, call_id, "short")
            (error,) = assert_documented(refused, SCENARIO_PATH)["errors"]
            assert (refused.status_code, error["code"]) == (422, "90018")
            unknown = await put_scenario(client, call_id, "nope")  # a bad name is named first
            assert unknown.status_code == 422 and unknown.json()["errors"][0]["source"]["pointer"] == "/scenario"
