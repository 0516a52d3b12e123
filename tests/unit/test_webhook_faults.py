"""Webhook faults: the pure helpers (labels, spoiled headers), and the sender's holding back of out_of_order
events over an in-memory transport."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime

import httpx
import nacl.exceptions
import nacl.signing
import pytest

from emulator.faults.rules import FaultBook, FaultRule
from emulator.webhooks.envelope import build_event
from emulator.webhooks.faults import STALE_S, EventFaults, fault_headers, label, spoiled_signature
from emulator.webhooks.sender import WebhookSender, WebhookTarget
from emulator.webhooks.signing import SigningKey

WHEN = datetime(2021, 12, 15, 14, 6, 32, 59436, tzinfo=UTC)
KEY = SigningKey.generate()
VERIFY = nacl.signing.VerifyKey(base64.b64decode(KEY.public_key_b64()))


def rule(kind: str, **params: object) -> FaultRule:
    return FaultBook(random.Random(1)).add({"target": "webhooks", "kind": kind, **params})


def event(event_type: str, event_id: str) -> dict[str, object]:
    return build_event(event_type, {"call_control_id": "v3:a"}, event_id=event_id, occurred_at=WHEN)


def verifies(headers: dict[str, str], body: bytes) -> bool:
    message = f"{headers['telnyx-timestamp']}|".encode() + body
    try:
        VERIFY.verify(message, base64.b64decode(headers["telnyx-signature-ed25519"]))
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def test_labels_name_the_rule_and_what_it_did():
    assert label(rule("duplicate")) == "flt_1: duplicate delivery"
    assert label(rule("delay", delay_ms=250)) == "flt_1: delivery delayed 250 ms"
    assert label(rule("failover"), "no failover URL") == "flt_1: primary URL skipped (no failover URL)"


def test_event_faults_pick_the_first_spoiler():
    assert EventFaults.of([]) is None
    faults = EventFaults.of([rule("delay", delay_ms=5), rule("bad_signature"), rule("delay", delay_ms=7)])
    assert faults is not None and faults.spoiler is not None and faults.spoiler.kind == "bad_signature"
    assert [r.params["delay_ms"] for r in faults.delays] == [5, 7] and faults.first("duplicate") is None


def test_spoiled_headers():
    body = b'{"data":{}}'
    bad = fault_headers(KEY, 1700000000.5, body, rule("bad_signature"))
    assert bad["telnyx-timestamp"] == "1700000000" and not verifies(bad, body)
    assert len(base64.b64decode(bad["telnyx-signature-ed25519"])) == 64  # the right form, just wrong
    stale = fault_headers(KEY, 1700000000.5, body, rule("stale_timestamp"))
    assert stale["telnyx-timestamp"] == str(1700000000 - STALE_S) and verifies(stale, body)
    assert verifies(fault_headers(KEY, 1700000000, body, rule("timeout")), body)
    assert spoiled_signature(bad["telnyx-signature-ed25519"]) == KEY.sign("1700000000", body)  # one byte off


class Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ids.append(json.loads(request.content)["data"]["id"])
        return httpx.Response(200)


@pytest.mark.anyio
async def test_held_events_come_out_latest_first_each_right_after_its_next_event():
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        sender = WebhookSender(client, KEY, retry_delays=())
        held = EventFaults.of([rule("out_of_order")])
        target = WebhookTarget("http://hook/a")
        sender.send("v3:a", target, event("call.answered", "a"), faults=held)
        sender.send("v3:a", target, event("call.bridged", "b"), faults=held)
        sender.send("v3:a", target, event("call.hangup", "c"))
        await sender.wait_idle()
    assert recorder.ids == ["c", "b", "a"]
    assert [a.fault for a in sender.attempts] == [
        None,
        "flt_1: held back, delivered after the call's next event (after call.hangup)",
        "flt_1: held back, delivered after the call's next event (after call.bridged)",
    ]


@pytest.mark.anyio
async def test_a_held_event_goes_out_after_the_hold_when_no_next_event_comes():
    recorder = Recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as client:
        sender = WebhookSender(client, KEY, retry_delays=())
        sender.hold = 0.05
        target = WebhookTarget("http://hook/a")
        sender.send("v3:a", target, event("call.hangup", "a"), faults=EventFaults.of([rule("out_of_order")]))
        await sender.wait_idle()
        sender.send("v3:a", target, event("call.answered", "b"), faults=EventFaults.of([rule("out_of_order")]))
        await sender.aclose(grace=0)  # closing drops a held event: wait_idle does not hang on it
    assert recorder.ids == ["a"]
    assert (
        sender.attempts[0].fault
        == "flt_1: held back, delivered after the call's next event (no next event within 0.05 s)"
    )
