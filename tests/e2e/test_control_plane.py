"""The control plane (``/_emulator/``) and namespaces: real emulator, real WebSocket target, real webhook
receiver. Every response is also checked against the emulator's OpenAPI document."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.contract import assert_documented
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def client_for(emulator, key: str = "test-key") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": f"Bearer {key}"})


async def incoming_call(client: httpx.AsyncClient, **fields) -> dict:
    response = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, **fields})
    return assert_documented(response, "/_emulator/calls")["data"]


async def test_reset_stops_running_streams_and_forgets_only_the_callers_namespace():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(speed=1, webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, client_for(emulator) as client, client_for(emulator, "B") as b:
            kept = await incoming_call(b)
            call = await incoming_call(client)
            await client.post(f"/v2/calls/{call['call_control_id']}/actions/answer", json={"stream_url": target.url})
            conn = await target.wait_connection()
            await target.wait_for(lambda: len(conn.of("media")) >= 2)

            response = await client.post("/_emulator/reset")
            assert assert_documented(response, "/_emulator/reset") == {
                "data": {"calls": 1, "streams_stopped": 1, "seed": None}
            }
            # By the time reset answers, the stream has sent stop and closed.
            assert "stop" in conn.events() and emulator.state.runtime.sessions == {}
            assert (await target.wait_closed()).close_code == 1000
            for path in ("calls", "streams", "commands", "webhooks"):
                assert (await client.get(f"/_emulator/{path}")).json() == {"data": []}, path
            # Another API key's namespace is untouched.
            (other,) = (await b.get("/_emulator/calls")).json()["data"]
            assert other["call_control_id"] == kept["call_control_id"] and other["state"] == "parked"


async def test_the_journal_records_every_api_request_with_secrets_masked():
    async with WsReceiver().running() as target, run_emulator() as emulator, client_for(emulator) as client:
        start = {"stream_url": target.url, "stream_auth_token": "s3cret", "command_id": "c-1"}
        url = "/v2/calls/v3:journal/actions/streaming_start"
        assert (await client.post(url, json=start)).status_code == 200
        assert (await client.post(url, json=start)).status_code == 200  # a duplicate: nothing runs
        assert (await client.post(url, json={"stream_track": "both"})).status_code == 422
        assert (await client.post(url, content=b"{oops")).status_code == 400
        assert (await client.post("/v2/nothing", json={})).status_code == 404
        assert (await client.get("/v2/calls/v3:journal")).status_code == 200
        await client.get("/_emulator/calls")  # the control plane is not journaled
        async with client_for(emulator, "other") as other:
            await other.get("/v2/calls/v3:elsewhere")  # nor are other keys' requests
        async with httpx.AsyncClient(base_url=emulator.url) as anonymous:
            assert (await anonymous.post(url, json=start)).status_code == 401  # nor a 401: it has no namespace

        entries = assert_documented(await client.get("/_emulator/commands"), "/_emulator/commands")["data"]
        assert [(e["method"], e["path"], e["status"], e["deduplicated"]) for e in entries] == [
            ("POST", url, 200, False),
            ("POST", url, 200, True),
            ("POST", url, 422, False),
            ("POST", url, 400, False),
            ("POST", "/v2/nothing", 404, False),
            ("GET", "/v2/calls/v3:journal", 200, False),
        ]
        assert entries[0]["body"] == {**start, "stream_auth_token": "***"}
        assert entries[3]["body"] == "{oops" and entries[5]["body"] is None
        assert entries[0]["at"].endswith("Z") and entries[0]["duration_ms"] >= 0
        assert "test-key" not in str(entries)
        await target.wait_closed()


async def test_streams_show_frame_counters_and_pacing_per_namespace():
    async with WsReceiver().running() as target, run_emulator(emulator_settings(scenario="tone")) as emulator:
        async with client_for(emulator) as client, client_for(emulator, "B") as b:
            body = {"stream_url": target.url, "stream_track": "both_tracks"}
            await client.post("/v2/calls/v3:stats/actions/streaming_start", json=body)
            conn = await target.wait_closed()
            await emulator.state.runtime.wait_idle()

            (stream,) = assert_documented(await client.get("/_emulator/streams"), "/_emulator/streams")["data"]
            media = len(conn.of("media"))
            assert (stream["call_control_id"], stream["state"], stream["end_reason"]) == (
                "v3:stats",
                "stopped",
                "completed",
            )
            assert stream["media_frames_sent"] == media < stream["frames_sent"] <= len(conn.messages)
            assert stream["close_code"] == 1000 and stream["max_lateness_ms"] >= 0
            one = await client.get(f"/_emulator/streams/{stream['stream_id']}")
            assert assert_documented(one, "/_emulator/streams/{stream_id}")["data"] == stream

            hidden = await b.get(f"/_emulator/streams/{stream['stream_id']}")
            assert assert_documented(hidden, "/_emulator/streams/{stream_id}")["errors"][0]["code"] == "10005"
            assert (await b.get("/_emulator/streams")).json() == {"data": []}


async def test_a_seed_makes_ids_reproducible_per_api_key():
    async with run_emulator() as emulator, client_for(emulator) as client:
        seeded = await client.post("/_emulator/seed", json={"seed": 42})
        assert assert_documented(seeded, "/_emulator/seed") == {"data": {"seed": 42}}
        first = await incoming_call(client)
        busy = await client.post("/_emulator/seed", json={"seed": 7})
        assert busy.status_code == 409 and assert_documented(busy, "/_emulator/seed")["errors"][0]["code"] == "10015"

        assert (await client.post("/_emulator/reset")).json()["data"]["seed"] == 42
        again = await incoming_call(client)  # reset restarts the sequence from the seed
        ids = ("call_control_id", "call_leg_id", "call_session_id")
        assert [again[k] for k in ids] == [first[k] for k in ids]

        for bad in ({"seed": -1}, {"seed": "42"}, {}, {"seed": 1.5}):
            response = await client.post("/_emulator/seed", json=bad)
            assert assert_documented(response, "/_emulator/seed")["errors"][0]["code"] in {"10004", "10015", "10033"}

    # --seed at start-up gives every namespace the ids POST /_emulator/seed would.
    async with run_emulator(emulator_settings(seed=42)) as emulator, client_for(emulator) as client:
        assert (await incoming_call(client))["call_control_id"] == first["call_control_id"]
        async with client_for(emulator, "B") as b:
            assert (await incoming_call(b))["call_control_id"] != first["call_control_id"]


async def test_api_keys_do_not_see_each_others_calls_or_webhooks():
    async with WebhookReceiver().running() as hooks:
        async with (
            run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator,
            client_for(emulator, "A") as a,
            client_for(emulator, "B") as b,
        ):
            call = await incoming_call(a)
            call_id = call["call_control_id"]
            assert (await b.get("/_emulator/calls")).json() == {"data": []}
            assert (await b.get(f"/_emulator/calls/{call_id}")).status_code == 404
            # B naming A's call is refused (90015), never reaches A's call.
            assert (await b.get(f"/v2/calls/{call_id}")).json()["errors"][0]["code"] == "90015"
            mine = assert_documented(await a.get(f"/_emulator/calls/{call_id}"), "/_emulator/calls/{call_control_id}")
            assert mine["data"]["state"] == "parked"
            assert (await b.post("/v2/calls/v3:b-only/actions/hangup", json={})).status_code == 200

            await hooks.wait_for(2)
            await emulator.state.runtime.wait_idle()
            a_log = assert_documented(await a.get("/_emulator/webhooks"), "/_emulator/webhooks")["data"]
            b_log = (await b.get("/_emulator/webhooks")).json()["data"]
            assert [w["event_type"] for w in a_log] == ["call.initiated"]
            assert [w["event_type"] for w in b_log] == ["call.hangup"]
            assert a_log[0]["ok"] is True and a_log[0]["call_control_id"] == call_id

            # An id both keys made up is two calls, one per key: each log shows only its own call's events.
            assert (await b.get("/v2/calls/shared")).status_code == 200  # B's own made-up call "shared"
            assert (await a.post("/v2/calls/shared/actions/hangup", json={})).status_code == 200
            await hooks.wait_for(3)
            await emulator.state.runtime.wait_idle()
            a_log = (await a.get("/_emulator/webhooks")).json()["data"]
            b_log = (await b.get("/_emulator/webhooks")).json()["data"]
            assert [(w["event_type"], w["call_control_id"]) for w in a_log[1:]] == [("call.hangup", "shared")]
            assert [w["call_control_id"] for w in b_log] == ["v3:b-only"]


async def test_the_openapi_document_is_public_and_names_the_server_it_came_from():
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url) as anonymous:
        response = await anonymous.get("/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": emulator.url}]
        health = await anonymous.get("/_emulator/health")  # health checks carry no key
        assert assert_documented(health, "/_emulator/health") == {"data": {"status": "ok"}}
        assert (await anonymous.get("/_emulator/calls")).status_code == 401  # the rest of the control plane needs one
        landing = await anonymous.get("/")
        assert landing.status_code == 200 and "text/html" in landing.headers["content-type"]
        assert f"{emulator.url}/v2" in landing.text and "/openapi.json" in landing.text
        dial = await anonymous.post(
            "/v2/calls",
            json={"connection_id": "1", "to": APP_NUMBER, "from": CALLER},
            headers={"Authorization": "Bearer k"},
        )
        assert_documented(dial, "/v2/calls")
        status = await anonymous.get(
            f"/v2/calls/{dial.json()['data']['call_control_id']}", headers={"Authorization": "Bearer k"}
        )
        assert_documented(status, "/v2/calls/{call_control_id}")
        key = await anonymous.get("/_emulator/public-key", headers={"Authorization": "Bearer k"})
        assert_documented(key, "/_emulator/public-key")


async def test_the_logs_filter_by_call_status_and_type_and_refused_commands_keep_their_errors(caplog):
    async with (
        run_emulator() as emulator,
        httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": "Bearer k"}) as client,
    ):
        for call_id in ("v3:one", "v3:two"):
            await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
        with caplog.at_level(logging.INFO, logger="emulator.api.recorder"):
            refused = await client.post("/v2/calls/v3:one/actions/speak", json={"payload": "hi"})
        assert refused.status_code == 422
        journal = (await client.get("/_emulator/commands", params={"call_control_id": "v3:one"})).json()["data"]
        assert [entry["path"] for entry in journal] == [
            "/v2/calls/v3:one/actions/hangup",
            "/v2/calls/v3:one/actions/speak",
        ]
        (failed,) = (await client.get("/_emulator/commands", params={"status": "4xx"})).json()["data"]
        assert failed["errors"] == refused.json()["errors"] and failed["status"] == 422
        assert (await client.get("/_emulator/commands", params={"status": "200", "method": "post"})).json()["data"]
        assert "POST /v2/calls/v3:one/actions/speak -> 422: 10004 /voice: " in caplog.text
        hooks = (await client.get("/_emulator/webhooks", params={"event_type": "call.hangup"})).json()["data"]
        assert sorted(h["call_control_id"] for h in hooks) == ["v3:one", "v3:two"]
        for params in ({"colour": "red"}, {"status": "bad"}):
            bad = await client.get("/_emulator/webhooks", params=params)
            assert bad.status_code == 400 and bad.json()["errors"][0]["title"] == "Invalid filter"
