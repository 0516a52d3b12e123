"""Webhook delivery end to end: a real httpx client POSTing to a real receiver under uvicorn."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime

import httpx
import pytest
import telnyx

from emulator.webhooks.sender import WebhookSender, WebhookTarget, build_event
from emulator.webhooks.signing import SigningKey
from tests.receivers import STALL, WebhookReceiver
from tests.servers import timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

KEY = SigningKey.generate()
FAST = (0.01, 0.01)


def event(event_type="call.answered", event_id="e1", call_control_id="v3:call-a"):
    payload = {"call_control_id": call_control_id, "state": "answered"}
    return build_event(event_type, payload, event_id=event_id, occurred_at=datetime.now(UTC))


def sdk_unwrap(request):
    """What a user's handler does: verify with the official SDK and the emulator's public key."""
    with telnyx.Telnyx(api_key="test", public_key=KEY.public_key_b64(), base_url="http://127.0.0.1:1/v2") as client:
        return client.webhooks.unwrap(request.text, headers=request.headers)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_delivered_with_telnyx_headers_and_a_signature_the_sdk_verifies():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY)
        built = event()
        sender.send("v3:call-a", WebhookTarget(receiver.url), built)
        await sender.wait_idle()

    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.path == "/webhooks"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "telnyx-webhooks"
    assert int(request.headers["content-length"]) == len(request.body)
    assert request.json == {"data": built, "meta": {"attempt": 1, "delivered_to": receiver.url}}
    unwrapped = sdk_unwrap(request)
    assert unwrapped.data.event_type == "call.answered"
    assert unwrapped.data.id == "e1"

    (attempt,) = sender.attempts
    assert (attempt.ok, attempt.status, attempt.error, attempt.url) == (True, 200, None, receiver.url)
    assert attempt.latency_ms > 0


async def test_retries_same_url_with_increasing_attempt_and_fresh_signatures():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        receiver.fail_next(2, status=500)
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(receiver.url), event())
        await sender.wait_idle()

    assert [r.attempt for r in receiver.requests] == [1, 2, 3]
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["telnyx-signature-ed25519"] for r in receiver.requests}) == 3
    for request in receiver.requests:
        assert sdk_unwrap(request).data.id == "e1"
    assert [(a.attempt, a.status, a.ok) for a in sender.attempts] == [(1, 500, False), (2, 500, False), (3, 200, True)]
    # Each attempt's record holds what was POSTed: the body parsed, and the signature headers sent with it.
    for request, attempt in zip(receiver.requests, sender.attempts, strict=True):
        logged = attempt.as_json()
        assert logged["payload"] == request.json
        assert logged["signature"] == {
            "telnyx-signature-ed25519": request.headers["telnyx-signature-ed25519"],
            "telnyx-timestamp": request.headers["telnyx-timestamp"],
        }


async def test_an_event_with_no_webhook_url_is_logged_with_the_event_it_would_have_sent():
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY)
        built = event()
        sender.send("v3:call-a", None, built)
    (attempt,) = sender.attempts
    logged = attempt.as_json()
    assert logged["skipped"] and logged["payload"] == {"data": built} and logged["signature"] is None


async def test_failover_after_the_primary_is_exhausted():
    primary = WebhookReceiver(default_status=503)
    async with primary.running(), WebhookReceiver().running() as failover, httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(primary.url, failover_url=failover.url), event())
        await sender.wait_idle()

    assert [r.attempt for r in primary.requests] == [1, 2, 3]
    assert [r.json["meta"]["delivered_to"] for r in primary.requests] == [primary.url] * 3
    (delivered,) = failover.requests
    assert delivered.json["meta"] == {"attempt": 4, "delivered_to": failover.url}
    sdk_unwrap(delivered)
    assert [(a.attempt, a.is_failover, a.ok) for a in sender.attempts] == [
        (1, False, False),
        (2, False, False),
        (3, False, False),
        (4, True, True),
    ]


async def test_gives_up_after_six_attempts_with_a_warning(caplog):
    caplog.set_level(logging.WARNING, logger="emulator.webhooks.sender")
    primary, failover = WebhookReceiver(default_status=500), WebhookReceiver(default_status=404)
    async with primary.running(), failover.running(), httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(primary.url, failover_url=failover.url), event())
        await sender.wait_idle()

    assert len(primary.requests) == 3 and len(failover.requests) == 3
    assert [a.status for a in sender.attempts] == [500] * 3 + [404] * 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-1] == "webhook call.answered for v3:call-a not delivered after 6 attempts"
    assert f"attempt 4 to {failover.url} failed (status 404)" in messages[3]


async def test_no_answer_within_the_timeout_is_retried():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        receiver.slow_next(1)
        sender = WebhookSender(client, KEY, timeout=timeout(0.2), retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(receiver.url), event())
        await sender.wait_idle()

    first, *_, last = sender.attempts
    assert (first.ok, first.status) == (False, None)
    assert first.error is not None and first.error.startswith("timeout")
    assert first.latency_ms >= timeout(0.2) * 1000 * 0.9
    assert (last.ok, last.status) == (True, 200)
    assert last.attempt == len(sender.attempts) >= 2  # 2, unless a loaded machine also timed out the retry
    assert [r.attempt for r in receiver.requests] == list(range(1, last.attempt + 1))


async def test_a_redirect_is_a_failure_and_is_not_followed():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        receiver.fail_next(1, status=302)
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(receiver.url), event())
        await sender.wait_idle()

    assert [(a.status, a.ok) for a in sender.attempts] == [(302, False), (200, True)]
    assert [r.path for r in receiver.requests] == ["/webhooks", "/webhooks"]  # never /redirected


async def test_order_per_call_is_kept_while_the_first_event_is_retried():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        receiver.fail_next(2, status=500)
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        target = WebhookTarget(receiver.url)
        sender.send("v3:call-a", target, event("call.initiated", "e1"))
        sender.send("v3:call-a", target, event("call.answered", "e2"))
        sender.send("v3:call-a", target, event("call.hangup", "e3"))
        await sender.wait_idle()

    assert [(r.json["data"]["id"], r.attempt, r.status) for r in receiver.requests] == [
        ("e1", 1, 500),
        ("e1", 2, 500),
        ("e1", 3, 200),
        ("e2", 1, 200),
        ("e3", 1, 200),
    ]


async def test_different_calls_deliver_in_parallel():
    def stall_call_a(request):
        return STALL if request.json["data"]["payload"]["call_control_id"] == "v3:call-a" else None

    async with WebhookReceiver(responses=stall_call_a).running() as receiver, httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY, timeout=timeout(5), retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(receiver.url), event(call_control_id="v3:call-a", event_id="a1"))
        sender.send("v3:call-b", WebhookTarget(receiver.url), event(call_control_id="v3:call-b", event_id="b1"))
        # b1 is answered while a1 still waits for its answer...
        await receiver.wait_until(lambda: [(r.json["data"]["id"], r.status) for r in receiver.requests] == [
            ("a1", None), ("b1", 200)
        ])  # fmt: skip
        # ...and a1 goes through once the receiver answers.
        receiver.release()
        await sender.wait_idle()

    assert sorted((a.event_id, a.attempt, a.ok) for a in sender.attempts) == [("a1", 1, True), ("b1", 1, True)]


async def test_connection_refused_is_recorded_not_raised(caplog):
    caplog.set_level(logging.WARNING, logger="emulator.webhooks.sender")
    url = f"http://127.0.0.1:{closed_port()}/webhooks"
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        sender.send("v3:call-a", WebhookTarget(url), event())
        await asyncio.wait_for(sender.wait_idle(), timeout(5))

    assert len(sender.attempts) == 3
    for attempt in sender.attempts:
        assert (attempt.ok, attempt.status, attempt.url) == (False, None, url)
        assert attempt.error is not None and attempt.error.startswith("ConnectError")
    assert caplog.records[-1].getMessage() == "webhook call.answered for v3:call-a not delivered after 3 attempts"


async def test_wait_idle_returns_at_once_when_nothing_is_queued_and_after_a_burst():
    async with WebhookReceiver().running() as receiver, httpx.AsyncClient() as client:
        sender = WebhookSender(client, KEY, retry_delays=FAST)
        await asyncio.wait_for(sender.wait_idle(), timeout(1))
        for n in range(20):
            call = f"v3:call-{n % 4}"
            sender.send(call, WebhookTarget(receiver.url), event(event_id=f"{call}/{n}", call_control_id=call))
        await asyncio.wait_for(sender.wait_idle(), timeout(10))
        assert len(receiver.requests) == 20
        assert all(a.ok for a in sender.attempts)
        await sender.aclose(grace=timeout(1))
