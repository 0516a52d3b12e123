"""The SIP-level and AI actions through a real emulator: each answers 200 and sends its webhooks, in order and
with the fields of Telnyx's event schemas; the control plane shows what the call keeps; gather_using_ai gathers
what the scenario's caller says; refusals are Telnyx's envelope."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
QUIET = "at_end: stay\ninbound:\n  - silence: {ms: 100}\n"
# The caller answers the app's question once it has been asked (the greeting is speech, as speak is).
ANSWERS = """\
at_end: stay
inbound:
  - wait_for: {event: speak_end, timeout_ms: 20000, on_timeout: fail}
  - say: {text: "I am 29 and I live in Paris"}
"""
LEG_FIELDS = {"call_control_id", "call_leg_id", "call_session_id", "client_state", "connection_id"}


def kinds(hooks: WebhookReceiver, call_id: str | None = None) -> list[str]:
    return [
        r.event_type
        for r in hooks.requests
        if call_id is None or r.json["data"]["payload"].get("call_control_id") == call_id
    ]


def payloads(hooks: WebhookReceiver, event_type: str) -> list[dict]:
    return [r.json["data"]["payload"] for r in hooks.requests if r.event_type == event_type]


async def ring(c: httpx.AsyncClient, scenario: str, *, answer: bool = True) -> str:
    created = await c.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    call_id = str(created.json()["data"]["call_control_id"])
    if answer:
        assert (await c.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
    return call_id


async def assistant(c: httpx.AsyncClient, call_id: str) -> dict:
    return (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]["ai_assistant"]


def error(response: httpx.Response) -> tuple[int, str, str | None]:
    (problem,) = response.json()["errors"]
    return response.status_code, problem["code"], problem.get("source", {}).get("pointer")


async def test_sip_actions_answer_send_their_webhooks_and_are_shown_on_the_call(tmp_path):
    (tmp_path / "quiet.yaml").write_text(QUIET)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "quiet.yaml"), answer=False)
                actions = f"/v2/calls/{call_id}/actions"
                early = await c.post(f"{actions}/siprec_start", json={"connector_name": "srs"})
                assert error(early) == (422, "90034", None)
                await c.post(f"{actions}/answer", json={})

                info = {"content_type": "application/json", "body": '{"ticket": 42}', "client_state": "c2lw"}
                assert (await c.post(f"{actions}/send_sip_info", json=info)).json() == {"data": {"result": "ok"}}
                bad_info = await c.post(f"{actions}/send_sip_info", json={"content_type": "json", "body": "x"})
                assert error(bad_info) == (422, "10015", "/content_type")
                assert error(await c.post(f"{actions}/send_sip_info", json={"body": "x"})) == (
                    422,
                    "10004",
                    "/content_type",
                )

                start = {"connector_name": "srs", "siprec_track": "inbound_track", "client_state": "cmVj"}
                assert (await c.post(f"{actions}/siprec_start", json=start)).status_code == 200
                await hooks.wait_until(lambda: "siprec.started" in kinds(hooks), seconds=5)
                again = await c.post(f"{actions}/siprec_start", json=start)
                assert error(again) == (422, "10015", None)
                bad_track = await c.post(f"{actions}/siprec_start", json={"siprec_track": "both"})
                assert error(bad_track) == (422, "10032", "/siprec_track")
                assert (await c.post(f"{actions}/switch_supervisor_role", json={"role": "whisper"})).status_code == 200
                bad_role = await c.post(f"{actions}/switch_supervisor_role", json={"role": "listen"})
                assert error(bad_role) == (422, "10032", "/role")

                shown = (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]
                assert shown["sip_info"][0]["body"] == '{"ticket": 42}' and shown["supervisor_role"] == "whisper"
                assert shown["siprec"]["connector_name"] == "srs" and shown["siprec"]["track"] == "inbound_track"

                assert (await c.post(f"{actions}/siprec_stop", json={})).status_code == 200
                await hooks.wait_until(lambda: "siprec.stopped" in kinds(hooks), seconds=5)
                assert error(await c.post(f"{actions}/siprec_stop", json={})) == (422, "10015", None)
                failing = await c.post(f"{actions}/siprec_start", json={"connector_name": "unreachable"})
                assert failing.status_code == 200
                await hooks.wait_until(lambda: "siprec.failed" in kinds(hooks), seconds=5)
                assert (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]["siprec"] is None

                assert (await c.post(f"{actions}/siprec_start", json={})).status_code == 200
                assert (await c.post(f"{actions}/hangup", json={})).status_code == 200
                await hooks.wait_until(lambda: kinds(hooks).count("siprec.stopped") == 2, seconds=5)
                late = await c.post(f"{actions}/send_sip_info", json=info)
                assert error(late) == (422, "90018", None)
    order = kinds(hooks)
    assert order[order.index("call.answered") :] == [
        "call.answered",
        "siprec.started",
        "siprec.stopped",
        "siprec.failed",
        "siprec.started",
        "call.hangup",
        "siprec.stopped",  # the call's end stops the session
    ]
    started, stopped = payloads(hooks, "siprec.started")[0], payloads(hooks, "siprec.stopped")[0]
    assert set(started) == LEG_FIELDS and started["client_state"] == "cmVj"
    assert set(stopped) == LEG_FIELDS | {"hangup_cause"} and stopped["hangup_cause"] == "normal_clearing"
    assert payloads(hooks, "siprec.failed")[0]["failure_cause"] == "no_answer"


async def test_gather_using_ai_gathers_what_the_scenarios_caller_says(tmp_path):
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    parameters = {
        "type": "object",
        "properties": {"age": {"type": "integer"}, "city": {"type": "string"}},
        "required": ["age", "city"],
    }
    body = {
        "parameters": parameters,
        "greeting": "How old are you, and where do you live?",
        "send_partial_results": True,
        "send_message_history_updates": True,
        "client_state": "YWk=",
    }
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "answers.yaml"))
                answer = (await c.post(f"/v2/calls/{call_id}/actions/gather_using_ai", json=body)).json()["data"]
                assert answer["result"] == "ok" and answer["conversation_id"]
                again = await c.post(f"/v2/calls/{call_id}/actions/gather_using_ai", json=body)
                assert error(again) == (422, "10015", None)
                shown = (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]["ai_gather"]
                assert shown["conversation_id"] == answer["conversation_id"] and shown["result"] == {}
                await hooks.wait_until(lambda: "call.conversation.ended" in kinds(hooks), seconds=20)
                assert (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]["ai_gather"] is None
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
    order = kinds(hooks)
    assert order[order.index("call.answered") + 1 :] == [
        "call.ai_gather.message_history_updated",  # the greeting
        "call.ai_gather.message_history_updated",  # the caller's words
        "call.ai_gather.partial_results",
        "call.ai_gather.ended",
        "call.conversation.ended",
        "call.hangup",
    ]
    (ended,) = payloads(hooks, "call.ai_gather.ended")
    assert ended["status"] == "valid" and ended["result"] == {"age": 29, "city": "I am 29 and I live in Paris"}
    assert ended["message_history"] == [
        {"role": "assistant", "content": "How old are you, and where do you live?"},
        {"role": "user", "content": "I am 29 and I live in Paris"},
    ]
    assert LEG_FIELDS | {"from", "to"} <= set(ended) and ended["client_state"] == "YWk="
    assert payloads(hooks, "call.ai_gather.partial_results")[0]["partial_results"] == ended["result"]
    (over,) = payloads(hooks, "call.conversation.ended")
    assert over["conversation_id"] == answer["conversation_id"] and over["reason"] is None
    assert over["duration_sec"] >= 1 and over["calling_party_type"] == "pstn"


async def test_gather_using_ai_ends_invalid_when_the_caller_stays_silent(tmp_path):
    (tmp_path / "quiet.yaml").write_text(QUIET)
    body = {"parameters": {"properties": {"name": {"type": "string"}}, "required": ["name"]}}
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "quiet.yaml"))
                gather = {**body, "user_response_timeout_ms": 2000}
                assert (await c.post(f"/v2/calls/{call_id}/actions/gather_using_ai", json=gather)).status_code == 200
                await hooks.wait_until(lambda: "call.ai_gather.ended" in kinds(hooks), seconds=10)
                bad = await c.post(f"/v2/calls/{call_id}/actions/gather_using_ai", json={"parameters": []})
                assert error(bad) == (422, "10015", "/parameters")
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
    (ended,) = payloads(hooks, "call.ai_gather.ended")
    assert ended["status"] == "invalid" and ended["result"] == {} and ended["message_history"] == []


async def test_an_assistant_and_a_relay_keep_their_state_and_end_with_call_conversation_ended(tmp_path):
    (tmp_path / "answers.yaml").write_text(ANSWERS)
    (tmp_path / "quiet.yaml").write_text(QUIET)
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "answers.yaml"))
                actions = f"/v2/calls/{call_id}/actions"
                start = {
                    "assistant": {"id": "assistant-42", "model": "openai/gpt-4o"},
                    "greeting": "Hi, how can I help?",
                }
                conversation_id = (await c.post(f"{actions}/ai_assistant_start", json=start)).json()["data"][
                    "conversation_id"
                ]
                relay = {"url": "wss://relay.example.com/ws"}
                no_url = await c.post(f"{actions}/conversation_relay_start", json={"greeting": "Hi"})
                assert error(no_url) == (422, "10004", "/url")
                assert error(await c.post(f"{actions}/conversation_relay_start", json=relay)) == (422, "10015", None)
                added = {"messages": [{"role": "system", "content": "The caller is a VIP."}]}
                assert (await c.post(f"{actions}/ai_assistant_add_messages", json=added)).status_code == 200

                leg_id = await ring(c, str(tmp_path / "quiet.yaml"))
                join = {"conversation_id": conversation_id, "participant": {"id": leg_id, "role": "user"}}
                joined = await c.post(f"/v2/calls/{leg_id}/actions/ai_assistant_join", json=join)
                assert joined.json() == {"data": {"result": "ok", "conversation_id": conversation_id}}
                unknown = {**join, "conversation_id": "nope"}
                assert error(await c.post(f"/v2/calls/{leg_id}/actions/ai_assistant_join", json=unknown)) == (
                    422,
                    "10015",
                    "/conversation_id",
                )

                async with asyncio.timeout(timeout(20)):  # the caller answers the greeting: the assistant hears it
                    while len((shown := await assistant(c, call_id))["messages"]) < 3:
                        await asyncio.sleep(0.05)
                assert shown["conversation_id"] == conversation_id and shown["participants"][0]["id"] == leg_id
                assert shown["messages"] == [
                    {"role": "assistant", "content": "Hi, how can I help?"},
                    {"role": "system", "content": "The caller is a VIP."},
                    {"role": "user", "content": "I am 29 and I live in Paris"},
                ]
                assert (await c.post(f"{actions}/ai_assistant_stop", json={})).status_code == 200
                assert error(await c.post(f"{actions}/ai_assistant_stop", json={})) == (422, "10015", None)

                started = (await c.post(f"{actions}/conversation_relay_start", json=relay)).json()["data"]
                relay_shown = (await c.get(f"/_emulator/calls/{call_id}")).json()["data"]["conversation_relay"]
                assert relay_shown["url"] == relay["url"]
                assert relay_shown["conversation_relay_id"] == started["conversation_relay_id"]
                assert (await c.post(f"{actions}/hangup", json={})).status_code == 200
                await hooks.wait_until(lambda: kinds(hooks, call_id).count("call.conversation.ended") == 2, seconds=5)
                await c.post(f"/v2/calls/{leg_id}/actions/hangup", json={})
    order = kinds(hooks, call_id)
    assert order[order.index("call.answered") + 1 :] == [
        "call.conversation.ended",
        "call.hangup",
        "call.conversation.ended",
    ]
    by_assistant, by_hangup = payloads(hooks, "call.conversation.ended")
    assert by_assistant["conversation_id"] == conversation_id and by_assistant["assistant_id"] == "assistant-42"
    assert by_assistant["llm_model"] == "openai/gpt-4o" and by_assistant["tts_provider"] == "telnyx"
    assert by_hangup["conversation_id"] == started["conversation_relay_id"] and by_hangup["reason"] is None


async def test_a_silence_timer_set_while_a_quiet_call_sleeps_counts_from_now(tmp_path):
    # With no stream, the call's media sleeps through the long silence after the key; the gather's timer (0 ms:
    # due at once) must be placed at the present tick, not where that sleep began, and the media go on.
    (tmp_path / "pause.yaml").write_text(
        "at_end: stay\ninbound:\n  - dtmf: {digits: '1'}\n  - silence: {ms: 60000}\n  - dtmf: {digits: '2'}\n"
    )
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await ring(c, str(tmp_path / "pause.yaml"))
                await hooks.wait_until(lambda: "call.dtmf.received" in kinds(hooks), seconds=5)
                gather = {"parameters": {"required": ["x"]}, "user_response_timeout_ms": 0}
                assert (await c.post(f"/v2/calls/{call_id}/actions/gather_using_ai", json=gather)).status_code == 200
                await hooks.wait_until(lambda: "call.conversation.ended" in kinds(hooks), seconds=5)
                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                await hooks.wait_until(lambda: "call.hangup" in kinds(hooks), seconds=5)
            assert emulator.state.runtime.failures == []
    assert payloads(hooks, "call.ai_gather.ended")[0]["status"] == "invalid"
