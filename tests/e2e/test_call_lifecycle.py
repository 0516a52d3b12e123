"""Calls with a lifecycle and the webhooks they send: real emulator, real WebSocket target, real
webhook receiver."""

from __future__ import annotations

import asyncio
import base64

import httpx
import pytest

from emulator import cli
from emulator.calls.actions import ACTIONS
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"


def client_for(emulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=emulator.url, headers=AUTH)


def events(receiver: WebhookReceiver) -> list[str]:
    return [r.event_type for r in receiver.requests]


def payload(receiver: WebhookReceiver, event_type: str) -> dict:
    (match,) = [r.json["data"]["payload"] for r in receiver.requests if r.event_type == event_type]
    return match


async def wait_events(receiver: WebhookReceiver, *wanted: str, seconds: float = 5) -> None:
    await receiver.wait_until(lambda: all(e in events(receiver) for e in wanted), seconds)


async def test_inbound_call_answered_with_a_stream_then_hung_up():
    async with (
        WebhookReceiver().running() as hooks,
        WsReceiver().running() as target,
    ):
        settings = emulator_settings(speed=1, webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
            assert created.status_code == 201
            call_id = created.json()["data"]["call_control_id"]
            assert call_id.startswith("v3:") and created.json()["data"]["state"] == "parked"

            await wait_events(hooks, "call.initiated")
            initiated = payload(hooks, "call.initiated")
            assert initiated["direction"] == "incoming" and initiated["state"] == "parked"
            assert initiated["start_time"].endswith("Z") and initiated["caller_id_name"] == CALLER
            assert (initiated["from"], initiated["to"], initiated["call_control_id"]) == (CALLER, APP_NUMBER, call_id)

            actions = f"/v2/calls/{call_id}/actions"
            early = await client.post(f"{actions}/streaming_start", json={"stream_url": target.url})
            assert early.status_code == 422 and early.json()["errors"][0]["code"] == "90034"

            state = base64.b64encode(b"answered").decode()
            answer = await client.post(
                f"{actions}/answer",
                json={"stream_url": target.url, "stream_track": "both_tracks", "client_state": state},
            )
            assert answer.json() == {"data": {"result": "ok"}}
            conn = await target.wait_connection()
            await target.wait_for(lambda: len(conn.of("media")) >= 4)
            await wait_events(hooks, "call.answered", "streaming.started")
            assert payload(hooks, "call.answered")["client_state"] == state
            assert payload(hooks, "streaming.started")["stream_url"] == target.url

            assert (await client.post(f"{actions}/hangup", json={})).json() == {"data": {"result": "ok"}}
            conn = await target.wait_closed()
            assert conn.events()[-1] == "stop" and conn.close_code == 1000
            await wait_events(hooks, "call.hangup", "streaming.stopped")
            hangup = payload(hooks, "call.hangup")
            assert (hangup["hangup_cause"], hangup["hangup_source"], hangup["sip_hangup_cause"]) == (
                "normal_clearing",
                "callee",
                "200",
            )
            assert events(hooks) == [
                "call.initiated",
                "call.answered",
                "streaming.started",
                "call.hangup",
                "streaming.stopped",
            ]

            for action in ("hangup", "answer", "streaming_start", "streaming_stop"):
                late = await client.post(f"{actions}/{action}", json={"stream_url": target.url})
                assert late.status_code == 422 and late.json()["errors"][0]["code"] == "90018", action
            retrieved = (await client.get(f"/v2/calls/{call_id}")).json()["data"]
            assert retrieved["is_alive"] is False and retrieved["record_type"] == "call"
            # The control plane's times are wall-clock UTC, like the journal's and the webhook log's.
            seen = (await client.get(f"/_emulator/calls/{call_id}")).json()["data"]
            assert [h["state"] for h in seen["history"]] == ["parked", "answered", "ended"]
            assert all(h["at"].endswith("Z") for h in seen["history"])
            (stream,) = seen["streams"]
            assert stream["started_at"] <= stream["ended_at"] and seen["history"][1]["at"] <= stream["started_at"]


async def test_dial_is_answered_and_streams_when_the_callee_picks_up():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator, client_for(emulator) as client:
            body = {
                "connection_id": "1234",
                "to": APP_NUMBER,
                "from": CALLER,
                "stream_url": target.url,
                "command_id": "dial-1",
            }
            response = await client.post("/v2/calls", json=body)
            assert response.status_code == 200
            data = response.json()["data"]
            assert data["is_alive"] is False and data["record_type"] == "call"
            assert len(data["call_control_id"]) == 57 and {"call_leg_id", "call_session_id"} <= set(data)
            # A repeated dial command_id makes no second call and answers the same ids.
            assert (await client.post("/v2/calls", json=body)).json()["data"] == data

            assert (await target.wait_closed()).close_code == 1000
            await wait_events(hooks, "streaming.stopped")
            await emulator.state.runtime.wait_idle()
            assert events(hooks)[:3] == ["call.initiated", "call.answered", "streaming.started"]
            assert payload(hooks, "call.initiated")["direction"] == "outgoing"
            assert payload(hooks, "call.initiated")["state"] == "bridging"
            assert events(hooks).count("call.dtmf.received") == 3
            assert [p["digit"] for p in (r.json["data"]["payload"] for r in hooks.requests) if "digit" in p] == [
                "1",
                "2",
                "3",
            ]
            assert len(emulator.store().calls) == 1 and len(target.connections) == 1


@pytest.mark.parametrize(
    ("outcome", "cause", "sip"),
    [("busy", "user_busy", "486"), ("reject", "call_rejected", "603"), ("no_answer", "timeout", "480")],
)
async def test_dial_not_answered_ends_with_the_callees_hangup_cause(tmp_path, outcome, cause, sip):
    (tmp_path / "callee.yaml").write_text(
        f"callee: {{outcome: {outcome}, ring_ms: 500}}\ninbound:\n  - silence: {{ms: 100}}\n"
    )
    settings = emulator_settings(scenario_dir=tmp_path, scenario="callee")
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        async with run_emulator(settings.replace(webhook_url=hooks.url)) as emulator, client_for(emulator) as client:
            body = {"connection_id": "1", "to": APP_NUMBER, "from": CALLER, "stream_url": target.url}
            call_id = (await client.post("/v2/calls", json=body)).json()["data"]["call_control_id"]
            await wait_events(hooks, "call.hangup")
            hangup = payload(hooks, "call.hangup")
            assert (hangup["hangup_cause"], hangup["sip_hangup_cause"], hangup["hangup_source"]) == (
                cause,
                sip,
                "callee",
            )
            await emulator.state.runtime.wait_idle()
            assert events(hooks) == ["call.initiated", "call.hangup"]
            assert target.connections == []  # never answered: the stream never opened
            again = await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})
            assert again.json()["errors"][0]["code"] == "90018"


async def test_streaming_stop_of_one_stream_then_of_all():
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(speed=1, webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            actions = "/v2/calls/v3:two-streams/actions"
            for _ in range(3):
                assert (await client.post(f"{actions}/streaming_start", json={"stream_url": target.url})).is_success
            conns = [await target.wait_connection(i) for i in range(3)]
            await target.wait_for(lambda: all(len(c.messages) >= 2 for c in conns))
            first = conns[0].messages[1]["stream_id"]
            stopped = await client.post(f"{actions}/streaming_stop", json={"stream_id": first})
            assert stopped.json() == {"data": {"result": "ok"}}
            assert (await target.wait_closed(0)).events()[-1] == "stop"
            assert not conns[1].closed.is_set() and not conns[2].closed.is_set()

            assert (await client.post(f"{actions}/streaming_stop", json={})).is_success
            for i in (1, 2):
                assert (await target.wait_closed(i)).close_code == 1000
            await wait_events(hooks, "streaming.stopped")
            await emulator.state.runtime.wait_idle()
            assert events(hooks).count("streaming.stopped") == 3
            nothing = await client.post(f"{actions}/streaming_stop", json={})
            assert nothing.status_code == 422 and nothing.json()["errors"][0]["code"] == "90048"


# The smallest valid body of each action that needs fields (validation comes before the call is looked up).
VALID_BODIES = {
    "answer": {"stream_url": "ws://127.0.0.1:9/x"},
    "streaming_start": {"stream_url": "ws://127.0.0.1:9/x"},
    "speak": {"payload": "Hello", "voice": "female"},
    "send_dtmf": {"digits": "1"},
    "reject": {"cause": "USER_BUSY"},
    "client_state_update": {"client_state": "aGk="},
    "record_start": {"format": "wav", "channels": "single"},
    "gather_using_speak": {"payload": "Press 1", "voice": "female"},
    "refer": {"sip_address": "sip:agent@example.com"},
    "transfer": {"to": "+13125550133"},
    "enqueue": {"queue_name": "support"},
    "send_sip_info": {"content_type": "application/json", "body": "{}"},
    "switch_supervisor_role": {"role": "monitor"},
    "ai_assistant_join": {"conversation_id": "c", "participant": {"id": "v3:x", "role": "user"}},
    "gather_using_ai": {"parameters": {"type": "object"}},
}


async def test_strict_calls_reject_unknown_call_control_ids_on_every_route():
    async with run_emulator(emulator_settings(strict_calls=True)) as emulator, client_for(emulator) as client:
        requests = [(action.method, f"/v2/calls/v3:unknown/actions/{name}") for name, action in ACTIONS.items()]
        for method, path in [*requests, ("GET", "/v2/calls/v3:unknown")]:
            body = VALID_BODIES.get(path.rsplit("/", 1)[-1], {})
            response = await client.request(method, path, json=body if method != "GET" else None)
            assert response.status_code == 422, path
            assert response.json()["errors"] == [
                {
                    "code": "90015",
                    "title": "Invalid Call Control ID",
                    "detail": "The call_control_id provided was not valid.",
                    "source": {"pointer": "/call_control_id"},
                }
            ], path
        assert emulator.store().calls == {}  # nothing was made up


async def test_a_refused_stream_url_sends_streaming_failed():
    async with WsReceiver().running() as gone:
        port = gone.server.sockets[0].getsockname()[1]
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator, client_for(emulator) as client:
            url = f"ws://127.0.0.1:{port}/stream"
            body = {"stream_url": url, "stream_track": "both_tracks", "client_state": "aGk="}
            assert (await client.post("/v2/calls/v3:refused/actions/streaming_start", json=body)).is_success
            await wait_events(hooks, "streaming.failed")
            failed = payload(hooks, "streaming.failed")
            assert failed["failure_reason"] == "connection_failed" and failed["stream_type"] == "websocket"
            assert failed["stream_params"] == {"stream_url": url, "track": "both_tracks"}
            assert failed["client_state"] == "aGk=" and failed["call_control_id"] == "v3:refused"
            assert failed["stream_id"] == next(iter(emulator.store().calls["v3:refused"].streams))
            # The emulator keeps serving.
            assert (await client.get("/_emulator/health")).json() == {"data": {"status": "ok"}}


async def test_delivered_webhooks_verify_with_the_official_sdk():
    telnyx = pytest.importorskip("telnyx")
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator, client_for(emulator) as client:
            public_key = (await client.get("/_emulator/public-key")).json()["data"]["public_key"]
            await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
            (request,) = await hooks.wait_for(1)
            sdk = telnyx.Telnyx(api_key="test", public_key=public_key, base_url=f"{emulator.url}/v2")
            event = sdk.webhooks.unwrap(request.text, headers=request.headers)
            assert event.data.event_type == "call.initiated"
            assert request.headers["user-agent"] == "telnyx-webhooks"
            with pytest.raises(Exception):  # noqa: B017 - the SDK's own verification error
                sdk.webhooks.unwrap(request.text.replace("incoming", "outgoing"), headers=request.headers)


async def test_webhooks_retry_then_fail_over_with_increasing_attempts():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url_for("primary"), webhook_failover_url=hooks.url_for("backup"))
        hooks.fail_next(3, status=503)
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
            await hooks.wait_for(4)
            await emulator.state.runtime.wait_idle()
            assert [(r.path, r.attempt) for r in hooks.requests] == [
                ("/primary", 1),
                ("/primary", 2),
                ("/primary", 3),
                ("/backup", 4),
            ]
            log = (await client.get("/_emulator/webhooks")).json()["data"]
            assert [(a["status"], a["ok"]) for a in log] == [(503, False)] * 3 + [(200, True)]


async def test_cli_call_command_rings_the_app(capsys):
    async with WebhookReceiver().running() as hooks, run_emulator(emulator_settings()) as emulator:
        argv = ["call", "--from", CALLER, "--to", APP_NUMBER, "--webhook-url", hooks.url, "--emulator", emulator.url]
        assert await asyncio.to_thread(cli.main, argv, {}) == 0
        out = capsys.readouterr().out
        assert "incoming call v3:" in out and "call.initiated is on its way" in out
        (request,) = await hooks.wait_for(1)
        assert request.event_type == "call.initiated"
        # No webhook URL anywhere: the call rings, and the command says nobody will hear it.
        unheard = ["call", "--from", CALLER, "--to", APP_NUMBER, "--emulator", emulator.url]
        assert await asyncio.to_thread(cli.main, unheard, {}) == 0
        assert "warning: no webhook URL: call.initiated was not sent" in capsys.readouterr().err
        bad = ["call", "--from", "123", "--to", APP_NUMBER, "--emulator", emulator.url]
        assert await asyncio.to_thread(cli.main, bad, {}) == 2
        assert "E164" in capsys.readouterr().err
    down = ["call", "--from", CALLER, "--to", APP_NUMBER, "--emulator", emulator.url]
    assert await asyncio.to_thread(cli.main, down, {}) == 1
    assert "cannot reach the emulator" in capsys.readouterr().err


async def test_answer_of_a_made_up_id_rings_then_answers_and_streams_and_a_second_answer_is_refused(tmp_path):
    # The SDK's own examples answer call_control_id="call_control_id": that must stream, not pass silently.
    (tmp_path / "stays.yaml").write_text("at_end: stay\ninbound:\n  - tone: {frequency: 440, ms: 200}\n")
    async with WebhookReceiver().running() as hooks, WsReceiver().running() as target:
        settings = emulator_settings(webhook_url=hooks.url, scenario=str(tmp_path / "stays.yaml"))
        async with run_emulator(settings) as emulator, client_for(emulator) as client:
            actions = "/v2/calls/call_control_id/actions"
            answer = await client.post(f"{actions}/answer", json={"stream_url": target.url})
            assert answer.status_code == 200
            await wait_events(hooks, "call.answered", "streaming.started")
            await target.wait_for(lambda: len(target.connections[0].of("media")) >= 10)  # the tone, then silence
            again = await client.post(f"{actions}/answer", json={"stream_url": target.url})
            assert again.status_code == 422
            (error,) = again.json()["errors"]
            assert error["code"] == "10015" and "already answered" in error["detail"]


async def test_a_call_made_under_another_api_key_is_refused_with_90015_naming_the_mistake():
    async with run_emulator() as emulator, client_for(emulator) as client:
        created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
        call_id = created.json()["data"]["call_control_id"]
        other = {"Authorization": "Bearer another-key"}
        for method, path in [("POST", f"/v2/calls/{call_id}/actions/answer"), ("GET", f"/v2/calls/{call_id}")]:
            response = await client.request(method, path, json={} if method == "POST" else None, headers=other)
            assert response.status_code == 422, path
            (error,) = response.json()["errors"]
            assert error["code"] == "90015" and "another API key" in error["detail"]
            assert error["source"] == {"pointer": "/call_control_id"}
        # Ids the app made up stay per key: each key gets its own lenient call.
        assert (await client.get("/v2/calls/made-up", headers=other)).status_code == 200
        assert (await client.get("/v2/calls/made-up")).status_code == 200


async def test_cli_call_follow_prints_each_webhook_of_the_call_until_its_hangup(capsys):
    async with WebhookReceiver().running() as hooks, run_emulator(emulator_settings(scenario="dtmf")) as emulator:
        argv = ["call", "--from", CALLER, "--to", APP_NUMBER, "--webhook-url", hooks.url, "--emulator", emulator.url]
        following = asyncio.create_task(asyncio.to_thread(cli.main, [*argv, "--follow"], {}))
        (initiated,) = await hooks.wait_for(1)
        call_id = initiated.json["data"]["payload"]["call_control_id"]
        # The app answers, with the command's key (its calls' namespace); the caller keys 4219#, hangs up.
        async with httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": "Bearer emulator"}) as client:
            assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
        assert await asyncio.wait_for(following, 15) == 0
    lines = capsys.readouterr().out.splitlines()
    followed = [line.split()[1] for line in lines if line[:2] == "20"]  # timestamped lines
    assert followed[0] == "call.initiated" and followed[-1] == "call.hangup"
    assert followed.count("call.dtmf.received") == 5 and "call.answered" in followed  # 4 2 1 9 #
    assert all(f"-> {hooks.url}: 200" in line for line in lines if line[:2] == "20")
