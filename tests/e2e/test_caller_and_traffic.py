"""The control plane a load run leans on: the caller hanging up on cue, the call list's filters, each call's
traffic and hangup cause, and each stream's ticks. Real emulator, real webhook receiver, real stream target;
every answer is also checked against the emulator's OpenAPI document."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from tests.contract import assert_documented
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALLER, APP_NUMBER = "+13125550111", "+13125550122"
CALLER_PATH = "/_emulator/calls/{call_control_id}/caller"
CALLS_PATH = "/_emulator/calls"
HANGUP = {"hangup": True}
# A far end that stays: as a caller it never hangs up by itself, as a dialed callee it rings for 10 minutes
# (at speed 1). A dialed call that ends while it rings stops its ring timer: nothing is left to wait for.
STAYING = """\
description: Rings for ten minutes when dialed; once answered, stays on the line until hung up.
at_end: stay
callee: {ring_ms: 600000}
inbound:
  - silence: {ms: 20}
"""


def client_for(emulator, key: str = "test-key") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": f"Bearer {key}"})


async def incoming_call(client: httpx.AsyncClient, **fields) -> str:
    response = await client.post(CALLS_PATH, json={"from": CALLER, "to": APP_NUMBER, **fields})
    return assert_documented(response, CALLS_PATH)["data"]["call_control_id"]


async def get_call(client: httpx.AsyncClient, call_id: str) -> dict:
    response = await client.get(f"{CALLS_PATH}/{call_id}")
    return assert_documented(response, "/_emulator/calls/{call_control_id}")["data"]


async def hang_up(client: httpx.AsyncClient, call_id: str, body: object = HANGUP) -> httpx.Response:
    """The caller's hangup, its answer checked against the OpenAPI document."""
    response = await client.post(f"{CALLS_PATH}/{call_id}/caller", json=body)
    assert_documented(response, CALLER_PATH)
    return response


def hangups(hooks: WebhookReceiver, call_id: str) -> list[dict]:
    return [
        r.json["data"]["payload"]
        for r in hooks.requests
        if r.event_type == "call.hangup" and r.json["data"]["payload"]["call_control_id"] == call_id
    ]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- POST /_emulator/calls/{call_control_id}/caller ---------------------------------------------


async def test_the_caller_of_a_ringing_call_gives_up_originator_cancel():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator, client_for(emulator) as client:
            call_id = await incoming_call(client)
            ringing = await get_call(client, call_id)
            assert (ringing["state"], ringing["hangup_cause"], ringing["hangup_source"]) == ("parked", None, None)

            response = await hang_up(client, call_id)
            assert response.status_code == 200
            assert response.json() == {
                "data": {"call_control_id": call_id, "action": "hangup", "at_ms": 0, "duration_ms": 0}
            }

            await hooks.wait_until(lambda: len(hangups(hooks, call_id)) == 1)
            (payload,) = hangups(hooks, call_id)
            assert (payload["hangup_cause"], payload["hangup_source"], payload["sip_hangup_cause"]) == (
                "originator_cancel",
                "caller",
                "487",
            )
            assert payload["start_time"] is None  # never answered
            ended = await get_call(client, call_id)
            assert (ended["state"], ended["is_alive"]) == ("ended", False)
            assert (ended["hangup_cause"], ended["hangup_source"]) == ("originator_cancel", "caller")

            # Hanging up again finds the call ended: 90018, as any command on an ended call; nothing is sent.
            again = await hang_up(client, call_id)
            assert again.status_code == 422 and again.json()["errors"][0]["code"] == "90018"
            await emulator.state.runtime.wait_idle()
            assert len(hangups(hooks, call_id)) == 1


async def test_the_caller_hangs_up_an_answered_call_where_its_media_is_now():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id = await incoming_call(client)
            answer = await client.post(f"/v2/calls/{call_id}/actions/answer", json={"stream_url": target.url})
            assert answer.status_code == 200
            conn = await target.wait_connection()
            await target.wait_for(lambda: len(conn.of("media")) >= 5)
            heard = len(conn.of("media"))
            assert (await get_call(client, call_id))["hangup_cause"] is None  # alive: no cause yet

            response = await hang_up(client, call_id)
            assert response.status_code == 200
            data = response.json()["data"]
            assert (data["call_control_id"], data["action"]) == (call_id, "hangup")
            # at_ms: where the call's media was (ms since the answer), at least as far as the target heard.
            assert data["at_ms"] % 20 == 0 and data["at_ms"] >= heard * 20

            assert (await target.wait_closed()).close_code == 1000
            assert conn.events()[-1] == "stop"
            await hooks.wait_until(lambda: len(hangups(hooks, call_id)) == 1)
            (payload,) = hangups(hooks, call_id)
            assert (payload["hangup_cause"], payload["hangup_source"]) == ("normal_clearing", "caller")
            await emulator.state.runtime.wait_idle()
            ended = await get_call(client, call_id)
            assert (ended["hangup_cause"], ended["hangup_source"]) == ("normal_clearing", "caller")
            assert ended["metrics"]["media_ms"] == data["at_ms"]  # the media stopped where the caller hung up
            (stream,) = ended["streams"]
            assert (stream["state"], stream["end_reason"]) == ("stopped", "hangup")
            stopped = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == "streaming.stopped"]
            assert [(payload["call_control_id"], payload["stream_url"]) for payload in stopped] == [
                (call_id, target.url)
            ]


async def test_the_callee_of_a_dialed_call_refuses_it_while_it_rings_and_hangs_up_once_answered(tmp_path: Path):
    staying = tmp_path / "staying.yaml"
    staying.write_text(STAYING)
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario=str(staying), speed=1)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            dial = await client.post("/v2/calls", json={"connection_id": "1", "to": APP_NUMBER, "from": CALLER})
            call_id = dial.json()["data"]["call_control_id"]
            assert (await get_call(client, call_id))["state"] == "bridging"

            response = await hang_up(client, call_id)
            assert response.json()["data"]["at_ms"] == 0
            await hooks.wait_until(lambda: len(hangups(hooks, call_id)) == 1)
            (payload,) = hangups(hooks, call_id)
            assert (payload["hangup_cause"], payload["hangup_source"], payload["sip_hangup_cause"]) == (
                "call_rejected",
                "callee",
                "603",
            )
            ended = await get_call(client, call_id)
            assert (ended["state"], ended["hangup_cause"], ended["hangup_source"]) == (
                "ended",
                "call_rejected",
                "callee",
            )
            assert "call.answered" not in [r.event_type for r in hooks.requests]
            async with asyncio.timeout(timeout(2)):  # the ten-minute ring was cancelled with the call
                await emulator.state.runtime.wait_idle()

    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")  # speed 0: answered at once
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            dial = await client.post("/v2/calls", json={"connection_id": "1", "to": APP_NUMBER, "from": CALLER})
            call_id = dial.json()["data"]["call_control_id"]
            await hooks.wait_until(lambda: "call.answered" in [r.event_type for r in hooks.requests])
            assert (await hang_up(client, call_id)).status_code == 200
            await hooks.wait_until(lambda: len(hangups(hooks, call_id)) == 1)
            (payload,) = hangups(hooks, call_id)
            assert (payload["hangup_cause"], payload["hangup_source"]) == ("normal_clearing", "callee")


async def test_the_caller_endpoint_refuses_bad_bodies_unknown_calls_and_no_key():
    async with run_emulator() as emulator, client_for(emulator) as client:
        call_id = await incoming_call(client)
        for body, pointers in (  # the other actions' bodies: tests/e2e/test_live_caller.py
            ({}, [None]),
            ({"hangup": False}, ["/hangup"]),
            ({"hangup": "true"}, ["/hangup"]),
            ({"hangup": True, "say": "bye"}, [None]),
        ):
            response = await hang_up(client, call_id, body)
            assert response.status_code == 422, body
            assert [error.get("source", {}).get("pointer") for error in response.json()["errors"]] == pointers, body
        unknown = (await hang_up(client, call_id, {"hang_up": True})).json()["errors"][0]
        assert (unknown["code"], unknown["title"], unknown["source"]) == (
            "10015",
            "Unknown parameter",
            {"pointer": "/hang_up"},
        )
        assert unknown["detail"] == "The caller's actions are dtmf, say, play, silence_ms and hangup."
        not_json = await client.post(f"{CALLS_PATH}/{call_id}/caller", content=b"{oops")
        assert assert_documented(not_json, CALLER_PATH)["errors"][0]["code"] == "10015"
        assert not_json.status_code == 400

        missing = await hang_up(client, "v3:no-such-call")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "10005"
        async with client_for(emulator, "another-key") as other:  # another key's call is not there for it
            assert (await hang_up(other, call_id)).status_code == 404
        async with httpx.AsyncClient(base_url=emulator.url) as anonymous:
            refused = await anonymous.post(f"{CALLS_PATH}/{call_id}/caller", json=HANGUP)
            assert refused.status_code == 401
            assert assert_documented(refused, CALLER_PATH)["errors"][0]["code"] == "10009"

        # None of that touched the call: it still rings, and a good body ends it.
        still = await get_call(client, call_id)
        assert (still["state"], still["hangup_cause"]) == ("parked", None)
        assert (await hang_up(client, call_id)).status_code == 200


# -- GET /_emulator/calls?is_alive=&state=&direction= -------------------------------------------


async def test_the_call_list_filters_by_liveness_state_and_direction(tmp_path: Path):
    staying = tmp_path / "staying.yaml"
    staying.write_text(STAYING)
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, scenario=str(staying), speed=1)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            ringing = await incoming_call(client)
            answered = await incoming_call(client)
            assert (await client.post(f"/v2/calls/{answered}/actions/answer", json={})).status_code == 200
            cancelled = await incoming_call(client)
            assert (await hang_up(client, cancelled)).status_code == 200
            dial = {"connection_id": "1", "to": APP_NUMBER, "from": CALLER, "timeout_secs": 600}
            dialing = (await client.post("/v2/calls", json=dial)).json()["data"]["call_control_id"]
            rejected = (await client.post("/v2/calls", json=dial)).json()["data"]["call_control_id"]
            assert (await hang_up(client, rejected)).status_code == 200

            async def listed(query: str) -> list[str]:
                response = await client.get(f"{CALLS_PATH}?{query}")
                return [call["call_control_id"] for call in assert_documented(response, CALLS_PATH)["data"]]

            assert await listed("") == [ringing, answered, cancelled, dialing, rejected]  # oldest first
            assert await listed("is_alive=true") == [ringing, answered, dialing]
            assert await listed("is_alive=false") == [cancelled, rejected]
            assert await listed("state=parked") == [ringing]
            assert await listed("state=answered") == [answered]
            assert await listed("state=bridging") == [dialing]
            assert await listed("state=ended") == [cancelled, rejected]
            assert await listed("direction=incoming") == [ringing, answered, cancelled]
            assert await listed("direction=outgoing") == [dialing, rejected]
            assert await listed("is_alive=true&direction=outgoing") == [dialing]
            assert await listed("state=ended&direction=incoming") == [cancelled]
            assert await listed("is_alive=false&state=answered") == []
            brief = assert_documented(await client.get(f"{CALLS_PATH}?is_alive=true&view=brief"), CALLS_PATH)["data"]
            fields = {"call_control_id", "direction", "state", "from", "to", "scenario", "created_at", "ended_at"}
            assert [set(call) for call in brief] == [fields | {"media_ms"}] * 3
            assert [(call["call_control_id"], call["state"]) for call in brief] == [
                (ringing, "parked"),
                (answered, "answered"),
                (dialing, "bridging"),
            ]
            bad_view = await client.get(f"{CALLS_PATH}?view=short")
            assert bad_view.status_code == 400 and "view: expected full or brief" in bad_view.text

            for query, detail in (
                ("is_alive=yes", "is_alive: expected true or false, got 'yes'."),
                ("is_alive=True", "is_alive: expected true or false, got 'True'."),
                ("state=answred", "state: expected parked or bridging or answered or ended, got 'answred'."),
                ("direction=in", "direction: expected incoming or outgoing, got 'in'."),
                ("colour=red", "Unknown filter 'colour'; this list takes: is_alive, state, direction, view."),
                (
                    "is_alive=true&status=200",
                    "Unknown filter 'status'; this list takes: is_alive, state, direction, view.",
                ),
            ):
                response = await client.get(f"{CALLS_PATH}?{query}")
                assert response.status_code == 400, query
                (error,) = assert_documented(response, CALLS_PATH)["errors"]
                assert (error["code"], error["title"], error["detail"]) == ("10015", "Invalid filter", detail)


# -- a call's traffic -----------------------------------------------------------------------------


async def test_traffic_counts_the_apps_commands_and_refusals_and_the_webhook_attempts_not_taken():
    async with WebhookReceiver().running() as hooks:
        hooks.fail_next(2, status=500)  # call.initiated's first two attempts; the third is taken
        settings = emulator_settings(webhook_url=hooks.url, scenario="stay-on-line")
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            call_id = await incoming_call(client)
            await hooks.wait_for(3)
            await emulator.state.runtime.wait_idle()
            assert (await get_call(client, call_id))["traffic"] == {
                "commands": 0,
                "commands_refused": 0,
                "webhook_attempts": 3,
                "webhook_failures": 2,
            }

            actions = f"/v2/calls/{call_id}/actions"
            assert (await client.post(f"{actions}/answer", json={})).status_code == 200
            assert (await client.post(f"{actions}/streaming_stop", json={})).status_code == 422  # nothing streams
            assert (await client.post(f"{actions}/speak", json={"payload": "hi"})).status_code == 422  # no voice
            await hooks.wait_for(4)  # call.answered
            await emulator.state.runtime.wait_idle()
            assert (await get_call(client, call_id))["traffic"] == {  # docs/control-plane.md's example
                "commands": 3,
                "commands_refused": 2,
                "webhook_attempts": 4,
                "webhook_failures": 2,
            }
            assert (await client.get(f"/v2/calls/{call_id}")).status_code == 200  # a read, not a command
            hooks.default_status = 404  # the app's URL stops taking them: call.hangup is tried 3 times
            assert (await client.post(f"{actions}/hangup", json={})).status_code == 200
            await hooks.wait_until(lambda: len(hangups(hooks, call_id)) == 3)
            await emulator.state.runtime.wait_idle()

            ended = await get_call(client, call_id)
            sent = [r.event_type for r in hooks.requests]
            assert sent == ["call.initiated"] * 3 + ["call.answered"] + ["call.hangup"] * 3
            assert ended["traffic"] == {
                "commands": 4,
                "commands_refused": 2,
                "webhook_attempts": 7,
                "webhook_failures": 5,
            }
            # The counts agree with the journal and the webhook log (while they keep everything).
            journal = (await client.get("/_emulator/commands", params={"call_control_id": call_id})).json()["data"]
            assert [entry["status"] for entry in journal] == [200, 422, 422, 200]
            log = (await client.get("/_emulator/webhooks", params={"call_control_id": call_id})).json()["data"]
            assert len(log) == 7 and sum(not attempt["ok"] for attempt in log) == 5


async def test_traffic_counts_a_url_that_never_answers_and_not_webhooks_with_no_url():
    async with run_emulator() as emulator, client_for(emulator) as client:  # no webhook URL
        unreachable = f"http://127.0.0.1:{closed_port()}/webhooks"
        lost = await incoming_call(client, webhook_url=unreachable)
        quiet = await incoming_call(client)
        for call_id in (lost, quiet):
            assert (await hang_up(client, call_id)).status_code == 200
        await emulator.state.runtime.wait_idle()

        # call.initiated and call.hangup, each tried 3 times: no answer at all is a failure too.
        assert (await get_call(client, lost))["traffic"] == {
            "commands": 0,
            "commands_refused": 0,
            "webhook_attempts": 6,
            "webhook_failures": 6,
        }
        # With no URL, nothing is attempted: the log shows the events as skipped, the traffic none.
        assert (await get_call(client, quiet))["traffic"]["webhook_attempts"] == 0
        log = (await client.get("/_emulator/webhooks", params={"call_control_id": quiet})).json()["data"]
        assert [attempt["skipped"] for attempt in log] == [True, True]


# -- a stream's ticks -------------------------------------------------------------------------------


async def test_a_stream_counts_one_tick_per_frame_and_none_late_at_speed_0():
    async with WsReceiver().running() as target:
        async with run_emulator(emulator_settings(scenario="tone")) as emulator, client_for(emulator) as client:
            call_id = await incoming_call(client)
            answer = {"stream_url": target.url, "stream_track": "inbound_track"}
            assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json=answer)).status_code == 200
            conn = await target.wait_closed()
            await emulator.state.runtime.wait_idle()

            assert len(conn.of("media")) == 100  # the tone scenario: 2 s of 20 ms frames
            (stream,) = (await get_call(client, call_id))["streams"]
            assert (stream["ticks"], stream["late_ticks"]) == (100, 0)
            assert stream["media_frames_sent"] == 100
            one = await client.get(f"/_emulator/streams/{stream['stream_id']}")
            assert assert_documented(one, "/_emulator/streams/{stream_id}")["data"] == stream
