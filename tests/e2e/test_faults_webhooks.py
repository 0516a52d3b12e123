"""Webhook faults end to end: rules at /_emulator/faults make the real emulator deliver an event twice, out of
order, late, with its answer lost, signed wrong, stamped 10 minutes old or to the failover URL; a real receiver
(the app, verifying with the official SDK) sees it, and the webhook log and the fault log say what was done."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import nacl.signing
import pytest
import telnyx

from emulator.webhooks.signing import SigningKey
from tests.receivers import ReceivedRequest, WebhookReceiver
from tests.servers import TEST_SIGNING_KEY, RunningEmulator, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
PUBLIC_KEY = SigningKey.from_private_b64(TEST_SIGNING_KEY).public_key_b64()
FLOW = ["call.initiated", "call.answered", "call.hangup"]


class App:
    """A well-behaved webhook handler: verifies each webhook with the official SDK, answers 400 when it does not
    verify (and keeps why), 200 otherwise."""

    def __init__(self) -> None:
        self.rejected: list[tuple[str | None, int | None, str]] = []  # (event type, attempt, why)

    def __call__(self, request: ReceivedRequest) -> int:
        with telnyx.Telnyx(api_key="test", public_key=PUBLIC_KEY, base_url="http://127.0.0.1:1/v2") as client:
            try:
                client.webhooks.unwrap(request.text, headers=request.headers)
            except Exception as exc:  # any way it does not verify (the SDK's error classes vary by release)
                self.rejected.append((request.event_type, request.attempt, str(exc)))
                return 400
        return 200


async def rule(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    added = await client.post("/_emulator/faults", json={"target": "webhooks", **body})
    assert added.status_code == 201, added.text
    return dict(added.json()["data"])


async def call_through(client: httpx.AsyncClient) -> str:
    """An inbound call answered and hung up: call.initiated, call.answered, call.hangup."""
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
    call_id = str(created.json()["data"]["call_control_id"])
    assert (await client.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
    assert (await client.post(f"/v2/calls/{call_id}/actions/hangup", json={})).status_code == 200
    return call_id


async def settled(emulator: RunningEmulator, client: httpx.AsyncClient) -> tuple[list[Any], list[Any]]:
    """Once every webhook was delivered or given up: the webhook log and the fault log."""
    async with asyncio.timeout(timeout(10)):
        await emulator.state.runtime.webhooks.wait_idle()
    attempts = (await client.get("/_emulator/webhooks")).json()["data"]
    injected = (await client.get("/_emulator/faults/injected")).json()["data"]
    return attempts, injected


def of(attempts: list[Any], event_type: str, *fields: str) -> list[tuple[Any, ...]]:
    return [tuple(a[name] for name in fields) for a in attempts if a["event_type"] == event_type]


def faults(injected: list[Any]) -> list[tuple[str, str, str]]:
    return [(item["rule_id"], item["kind"], item["detail"]) for item in injected]


async def test_duplicate_delivers_the_same_body_twice_in_a_row():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="duplicate", event_type="call.answered")
            call_id = await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [r.event_type for r in hooks.requests] == ["call.initiated", "call.answered", "call.answered", "call.hangup"]
    first, second = hooks.requests[1:3]
    assert first.body == second.body and first.json["data"]["id"] == second.json["data"]["id"]
    assert first.attempt == second.attempt == 1
    assert of(attempts, "call.answered", "attempt", "ok", "fault") == [
        (1, True, None), (1, True, "flt_1: duplicate delivery"),
    ]  # fmt: skip
    assert [a["fault"] for a in attempts if a["event_type"] != "call.answered"] == [None, None]
    assert [(item["rule_id"], item["kind"], item["call_control_id"]) for item in injected] == [
        ("flt_1", "duplicate", call_id)
    ]
    assert injected[0]["detail"] == "call.answered delivered twice (same event id)"


async def test_out_of_order_holds_an_event_until_the_next_one_or_for_a_second():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="out_of_order", event_type="call.answered", times=1)
            await call_through(c)
            await settled(emulator, c)
            swapped = [r.event_type for r in hooks.requests]
            # The last event of a call has no next one: it is held a second, then delivered all the same.
            await rule(c, kind="out_of_order", event_type="call.hangup", times=1)
            await call_through(c)
            await hooks.wait_until(lambda: len(hooks.requests) == 5)
            answered_at = hooks.requests[4].arrival
            await hooks.wait_until(lambda: len(hooks.requests) == 6)
            held_for = hooks.requests[5].arrival - answered_at
            attempts, injected = await settled(emulator, c)

    assert swapped == ["call.initiated", "call.hangup", "call.answered"]
    assert [r.event_type for r in hooks.requests[3:]] == FLOW and held_for >= 0.9
    assert [a["fault"] for a in attempts] == [
        None, None, "flt_1: held back, delivered after the call's next event (after call.hangup)",
        None, None, "flt_2: held back, delivered after the call's next event (no next event within 1 s)",
    ]  # fmt: skip
    assert faults(injected) == [
        ("flt_1", "out_of_order", "call.answered delivered after call.hangup"),
        ("flt_2", "out_of_order", "call.hangup held back 1 s: no next event came"),
    ]


async def test_delay_holds_the_call_s_later_events_too():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="delay", delay_ms=400, event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    initiated, answered, hangup = hooks.requests
    assert [r.event_type for r in hooks.requests] == FLOW
    assert answered.arrival - initiated.arrival >= 0.4
    assert hangup.arrival >= answered.arrival  # the call's FIFO: its later events waited too
    assert of(attempts, "call.answered", "attempt", "fault") == [(1, "flt_1: delivery delayed 400 ms")]
    assert faults(injected) == [("flt_1", "delay", "call.answered delivered 400 ms late")]


async def test_timeout_delivers_but_counts_the_answer_lost_so_the_app_sees_the_retry():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url, webhook_timeout=0.3)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="timeout", event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [r.event_type for r in hooks.requests] == ["call.initiated", "call.answered", "call.answered", "call.hangup"]
    first, retry = hooks.requests[1:3]
    assert (first.attempt, retry.attempt, first.status, retry.status) == (1, 2, 200, 200)
    assert first.json["data"] == retry.json["data"]  # same event id, same payload; meta.attempt differs
    assert retry.arrival - first.arrival >= 0.25
    (lost, delivered) = [a for a in attempts if a["event_type"] == "call.answered"]
    assert (lost["attempt"], lost["status"], lost["ok"]) == (1, None, False)
    assert lost["error"] == "timeout: the answer (200) was discarded by fault flt_1" and lost["latency_ms"] >= 300
    assert lost["fault"] == "flt_1: answer discarded, counted as a timeout"
    assert (delivered["attempt"], delivered["status"], delivered["ok"], delivered["fault"]) == (2, 200, True, None)
    assert faults(injected) == [("flt_1", "timeout", "call.answered attempt 1: answer discarded, counted as a timeout")]


async def test_bad_signature_is_rejected_by_the_app_and_the_retry_is_signed_right():
    app = App()
    async with WebhookReceiver(responses=app).running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="bad_signature", event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [(r.event_type, r.attempt, r.status) for r in hooks.requests] == [
        ("call.initiated", 1, 200), ("call.answered", 1, 400), ("call.answered", 2, 200), ("call.hangup", 1, 200),
    ]  # fmt: skip
    assert app.rejected == [("call.answered", 1, "Signature verification failed: signature does not match payload")]
    assert hooks.requests[1].json["data"]["id"] == hooks.requests[2].json["data"]["id"]
    assert of(attempts, "call.answered", "attempt", "status", "ok", "fault") == [
        (1, 400, False, "flt_1: signed wrong"), (2, 200, True, None),
    ]  # fmt: skip
    assert faults(injected) == [("flt_1", "bad_signature", "call.answered attempt 1: signed wrong")]


async def test_stale_timestamp_is_signed_right_but_the_sdk_refuses_it():
    app = App()
    async with WebhookReceiver(responses=app).running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="stale_timestamp", event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [(r.event_type, r.attempt, r.status) for r in hooks.requests] == [
        ("call.initiated", 1, 200), ("call.answered", 1, 400), ("call.answered", 2, 200), ("call.hangup", 1, 200),
    ]  # fmt: skip
    stale, fresh = hooks.requests[1:3]
    assert 595 <= int(fresh.headers["telnyx-timestamp"]) - int(stale.headers["telnyx-timestamp"]) <= 605
    verify_key = nacl.signing.VerifyKey(base64.b64decode(PUBLIC_KEY))
    signature = base64.b64decode(stale.headers["telnyx-signature-ed25519"])
    verify_key.verify(f"{stale.headers['telnyx-timestamp']}|".encode() + stale.body, signature)  # signed right
    # The SDK's wording varies with the verifier it loads ("... (600s difference)" in some): its start is stable.
    ((event_type, attempt, why),) = app.rejected
    assert (event_type, attempt) == ("call.answered", 1) and why.startswith("Webhook timestamp is too old or too new")
    assert of(attempts, "call.answered", "attempt", "status", "fault") == [
        (1, 400, "flt_1: telnyx-timestamp 10 minutes old"), (2, 200, None),
    ]  # fmt: skip
    assert faults(injected) == [
        ("flt_1", "stale_timestamp", "call.answered attempt 1: telnyx-timestamp 10 minutes old")
    ]


async def test_failover_skips_the_primary_url():
    async with WebhookReceiver().running() as primary, WebhookReceiver().running() as failover:
        settings = emulator_settings(webhook_url=primary.url, webhook_failover_url=failover.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="failover", event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [r.event_type for r in primary.requests] == ["call.initiated", "call.hangup"]
    (answered,) = failover.requests
    assert answered.event_type == "call.answered"
    assert answered.json["meta"] == {"attempt": 2, "delivered_to": failover.url}
    assert of(attempts, "call.answered", "attempt", "url", "is_failover", "ok", "error", "fault") == [
        (1, primary.url, False, False, "fault flt_1: primary URL skipped", "flt_1: primary URL skipped"),
        (2, failover.url, True, True, None, None),
    ]
    assert faults(injected) == [
        ("flt_1", "failover", "call.answered: primary URL skipped, delivered to the failover URL")
    ]


async def test_failover_without_a_failover_url_delivers_to_the_primary_and_says_so():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(webhook_url=hooks.url)
        async with run_emulator(settings) as emulator, httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
            await rule(c, kind="failover", event_type="call.answered")
            await call_through(c)
            attempts, injected = await settled(emulator, c)

    assert [(r.event_type, r.attempt) for r in hooks.requests] == [(event, 1) for event in FLOW]
    ((ok, error, fault),) = of(attempts, "call.answered", "ok", "error", "fault")
    assert ok is True and "no failover URL is configured" in error
    assert fault == "flt_1: primary URL skipped (no failover URL: delivered to the primary)"
    assert faults(injected) == [("flt_1", "failover", "call.answered: no failover URL, delivered to the primary URL")]


async def test_a_probability_replays_the_same_duplicates_from_the_seed():
    async def run() -> tuple[list[tuple[str, str | None]], list[str]]:
        async with WebhookReceiver().running() as hooks:
            settings = emulator_settings(webhook_url=hooks.url, seed=7)
            async with (
                run_emulator(settings, seed=7) as emulator,
                httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c,
            ):
                await rule(c, kind="duplicate", probability=0.5)
                for _ in range(4):
                    await call_through(c)
                attempts, injected = await settled(emulator, c)
        assert len(hooks.requests) == len(attempts)
        return [(a["event_type"], a["fault"]) for a in attempts], [item["detail"] for item in injected]

    first, again = await run(), await run()
    assert first == again
    duplicated = [event for event, fault in first[0] if fault is not None]
    assert 0 < len(duplicated) < 12 and len(first[1]) == len(duplicated)
