"""Fault rules at /_emulator/faults, and the REST faults they inject: a command answered 503 or 429 in Telnyx's
envelope, answered late, or accepted while its effect never happens; every fault in the journal and the log."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
ANSWERED = "v3:fault-call"  # lenient mode: an unknown id names an answered call


async def test_rules_are_added_listed_and_deleted_per_namespace():
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
        added = await client.post("/_emulator/faults", json={"target": "api", "kind": "status", "status": 503})
        assert added.status_code == 201
        rule = added.json()["data"]
        assert rule == {
            "id": "flt_1", "target": "api", "kind": "status", "status": 503, "source": "api", "matched": 0, "fired": 0,
        }  # fmt: skip
        other = {"Authorization": "Bearer another-key"}
        assert (await client.get("/_emulator/faults", headers=other)).json()["data"] == []
        await client.post("/_emulator/faults", json={"target": "webhooks", "kind": "duplicate", "every": 2})
        assert [r["id"] for r in (await client.get("/_emulator/faults")).json()["data"]] == ["flt_1", "flt_2"]
        assert (await client.delete("/_emulator/faults/flt_1")).json()["data"]["id"] == "flt_1"
        assert (await client.delete("/_emulator/faults/flt_1")).status_code == 404
        assert (await client.delete("/_emulator/faults")).json()["data"] == {"deleted": 1}
        assert (await client.get("/_emulator/faults")).json()["data"] == []


@pytest.mark.parametrize(
    ("rule", "pointer", "detail"),
    [
        ({"target": "api", "kind": "duplicate"}, "/kind", "A api fault's kind is one of"),
        ({"target": "dns", "kind": "status"}, "/target", "target is one of"),
        ({"target": "api", "kind": "status"}, "/status", None),
        ({"target": "api", "kind": "status", "status": 404}, "/status", "status is one of"),
        ({"target": "media", "kind": "loss", "probability": 2}, "/probability", None),
        ({"target": "media", "kind": "loss", "colour": "red"}, "/colour", None),
        ({"target": "media", "kind": "loss", "event_type": "call.answered"}, "/event_type", "does not match on"),
        ({"target": "webhooks", "kind": "duplicate", "action": "speak"}, "/action", "does not match on"),
        ({"target": "api", "kind": "delay", "delay_ms": 5, "action": "spek"}, "/action", "No command is named 'spek'"),
    ],
)
async def test_a_bad_rule_is_refused_with_a_pointer_to_its_field(rule, pointer, detail):
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
        response = await client.post("/_emulator/faults", json=rule)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert pointer in [error.get("source", {}).get("pointer") for error in errors], errors
    if detail is not None:
        assert any(detail in error["detail"] for error in errors), errors


async def test_a_command_answered_503_then_429_with_retry_after_then_performed():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await c.post("/_emulator/faults", json={"target": "api", "kind": "status", "status": 503, "times": 1})
            rule = {"target": "api", "kind": "status", "status": 429, "retry_after": 2, "action": "speak", "times": 1}
            await c.post("/_emulator/faults", json=rule)
            speak = {"payload": "hello", "voice": "female", "language": "en-US"}
            first = await c.post(f"/v2/calls/{ANSWERED}/actions/speak", json=speak)
            second = await c.post(f"/v2/calls/{ANSWERED}/actions/speak", json=speak)
            third = await c.post(f"/v2/calls/{ANSWERED}/actions/speak", json=speak)
            journal = (await c.get("/_emulator/commands")).json()["data"]
            injected = (await c.get("/_emulator/faults/injected")).json()["data"]
            rules = (await c.get("/_emulator/faults")).json()["data"]
    assert first.status_code == 503 and first.json()["errors"][0]["title"] == "Service unavailable"
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    assert second.json()["errors"][0]["code"] == "10011"
    assert third.status_code == 200
    assert [entry["fault"] for entry in journal] == [
        "flt_1: speak answered 503", "flt_2: speak answered 429", None,
    ]  # fmt: skip
    assert [(item["rule_id"], item["kind"], item["call_control_id"]) for item in injected] == [
        ("flt_1", "status", ANSWERED), ("flt_2", "status", ANSWERED),
    ]  # fmt: skip
    assert [(r["matched"], r["fired"]) for r in rules] == [(1, 1), (1, 1)]  # spent: no more matches counted


async def test_a_delayed_answer_and_an_accepted_command_that_never_happens():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await c.post(
                "/_emulator/faults", json={"target": "api", "kind": "delay", "delay_ms": 300, "action": "hangup"}
            )
            await c.post(
                "/_emulator/faults", json={"target": "api", "kind": "drop_effect", "action": "hangup", "times": 1}
            )
            started = time.monotonic()
            dropped = await c.post(f"/v2/calls/{ANSWERED}/actions/hangup", json={})
            waited = time.monotonic() - started
            still = (await c.get(f"/v2/calls/{ANSWERED}")).json()["data"]["is_alive"]
            done = await c.post(f"/v2/calls/{ANSWERED}/actions/hangup", json={})
            await hooks.wait_until(lambda: "call.hangup" in [r.event_type for r in hooks.requests])
    assert dropped.status_code == 200 and dropped.json() == {"data": {"result": "ok"}} and waited >= 0.3
    assert still is True  # the hangup was accepted and never happened
    assert done.status_code == 200
    assert [r.event_type for r in hooks.requests].count("call.hangup") == 1


async def test_faults_replay_from_the_seed():
    async def run() -> list[int]:
        settings = emulator_settings(seed=7)
        async with (
            run_emulator(settings, seed=7) as emulator,
            httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c,
        ):
            await c.post(
                "/_emulator/faults", json={"target": "api", "kind": "status", "status": 500, "probability": 0.5}
            )
            return [
                (
                    await c.put(f"/v2/calls/{ANSWERED}/actions/client_state_update", json={"client_state": "YQ=="})
                ).status_code
                for _ in range(20)
            ]

    first, again = await run(), await run()
    assert first == again and 500 in first and 200 in first


async def test_a_scenarios_faults_apply_to_its_calls_only(tmp_path):
    flaky = tmp_path / "flaky.yaml"
    flaky.write_text(
        "at_end: stay\ninbound:\n  - silence: {ms: 100}\n"
        "faults:\n  - {target: api, kind: status, status: 503, action: speak}\n"
    )
    speak = {"payload": "hello", "voice": "female", "language": "en-US"}
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
        calls = {}
        for scenario in (str(flaky), None):
            body = {"from": "+13125550111", "to": "+13125550122"} | ({"scenario": scenario} if scenario else {})
            call = (await c.post("/_emulator/calls", json=body)).json()["data"]["call_control_id"]
            await c.post(f"/v2/calls/{call}/actions/answer", json={})
            calls[scenario] = (await c.post(f"/v2/calls/{call}/actions/speak", json=speak)).status_code
        rules = (await c.get("/_emulator/faults")).json()["data"]
        await c.post("/_emulator/reset")
        after_reset = (await c.get("/_emulator/faults")).json()["data"]
    assert calls == {str(flaky): 503, None: 200}
    (rule,) = rules
    assert rule["scenario"] == str(flaky.resolve()) and rule["source"] == f"scenario:{flaky.resolve()}"
    # A reset forgets the rules' counts; the scenario's rule is back, as the scenario is still loaded.
    assert [(r["source"], r["fired"]) for r in after_reset] == [(f"scenario:{flaky.resolve()}", 0)]


async def test_a_scenarios_webhook_faults_fire_in_a_namespace_that_never_asked_before(tmp_path):
    doubled = tmp_path / "doubled.yaml"
    doubled.write_text(
        "at_end: stay\ninbound:\n  - silence: {ms: 100}\n"
        "faults:\n  - {target: webhooks, kind: duplicate, event_type: call.initiated}\n"
    )
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            fresh = {"Authorization": "Bearer a-brand-new-key"}
            async with httpx.AsyncClient(base_url=emulator.url, headers=fresh) as c:
                body = {"from": "+13125550111", "to": "+13125550122", "scenario": str(doubled)}
                await c.post("/_emulator/calls", json=body)
                await hooks.wait_until(lambda: len(hooks.requests) == 2)
    assert [r.event_type for r in hooks.requests] == ["call.initiated", "call.initiated"]
    assert hooks.requests[0].json["data"]["id"] == hooks.requests[1].json["data"]["id"]
