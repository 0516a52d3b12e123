"""Webhook envelope builders (pure) and the sender's bookkeeping over an in-memory transport."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from emulator.webhooks.envelope import build_event, format_time, render_body, signed_headers
from emulator.webhooks.sender import WebhookSender, WebhookTarget
from emulator.webhooks.signing import SigningKey
from tests.servers import timeout

KEY = SigningKey.generate()
WHEN = datetime(2021, 12, 15, 14, 6, 32, 59436, tzinfo=UTC)


def event(event_type="call.answered", event_id="e1", call_control_id="v3:a", **payload):
    return build_event(event_type, {"call_control_id": call_control_id, **payload}, event_id=event_id, occurred_at=WHEN)


# -- builders --------------------------------------------------------------------------------


def test_build_event_shape():
    payload = {"call_control_id": "v3:a", "stream_url": "wss://x"}
    built = build_event("streaming.started", payload, event_id="id-1", occurred_at=WHEN)
    assert built == {
        "record_type": "event",
        "event_type": "streaming.started",
        "id": "id-1",
        "occurred_at": "2021-12-15T14:06:32.059436Z",
        "payload": {"call_control_id": "v3:a", "stream_url": "wss://x"},
    }


def test_build_event_copies_the_payload():
    payload = {"state": "answered"}
    built = build_event("call.answered", payload, event_id="x", occurred_at=WHEN)
    payload["state"] = "changed"
    assert built["payload"] == {"state": "answered"}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2021, 12, 15, 14, 6, 32, tzinfo=UTC), "2021-12-15T14:06:32.000000Z"),
        (datetime(2021, 12, 15, 16, 6, 32, 5, tzinfo=timezone(timedelta(hours=2))), "2021-12-15T14:06:32.000005Z"),
    ],
)
def test_occurred_at_is_utc_with_microseconds(moment, expected):
    assert format_time(moment) == expected


def test_naive_occurred_at_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        build_event("call.answered", {}, event_id="x", occurred_at=datetime(2021, 1, 1))


def test_render_body_is_compact_utf8_with_meta():
    built = event(to="+1555✓")
    body = render_body(built, attempt=3, delivered_to="https://example.com/hook")
    assert b" " not in body.replace(b"+1555", b"")
    assert "✓".encode() in body  # raw UTF-8, not \\u escapes
    assert json.loads(body) == {"data": built, "meta": {"attempt": 3, "delivered_to": "https://example.com/hook"}}
    assert body.startswith(b'{"data":{"record_type":"event","event_type":"call.answered",')
    assert body.endswith(b'"meta":{"attempt":3,"delivered_to":"https://example.com/hook"}}')


def test_signed_headers():
    body = b'{"data":{}}'
    headers = signed_headers(KEY, "1700000000", body)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "telnyx-webhooks",
        "telnyx-signature-ed25519": KEY.sign("1700000000", body),
        "telnyx-timestamp": "1700000000",
    }


# -- sender over httpx.MockTransport ---------------------------------------------------------


class Recorder:
    """A MockTransport handler: records requests, answers from a script (default 200)."""

    def __init__(self, statuses=()):
        self.requests: list[httpx.Request] = []
        self.statuses = list(statuses)
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status)

    def bodies(self):
        return [json.loads(r.content) for r in self.requests]


def sender_for(recorder, **kwargs):
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    kwargs.setdefault("retry_delays", (0, 0))
    return client, WebhookSender(client, KEY, **kwargs)


@pytest.mark.anyio
async def test_timestamp_and_attempt_time_come_from_the_clock():
    recorder = Recorder()
    client, sender = sender_for(recorder, clock=lambda: 1639577192.059436)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a"), event())
        await sender.wait_idle()
    (request,) = recorder.requests
    assert request.headers["telnyx-timestamp"] == "1639577192"
    assert request.headers["telnyx-signature-ed25519"] == KEY.sign("1639577192", request.content)
    (attempt,) = sender.attempts
    assert attempt.at == "2021-12-15T14:06:32.059436Z"
    assert (attempt.ok, attempt.status, attempt.attempt, attempt.is_failover) == (True, 200, 1, False)
    assert (attempt.event_id, attempt.event_type, attempt.call_control_id) == ("e1", "call.answered", "v3:a")


@pytest.mark.anyio
async def test_no_target_is_recorded_as_skipped_and_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="emulator.webhooks.sender")
    recorder = Recorder()
    client, sender = sender_for(recorder)
    async with client:
        sender.send("v3:a", None, event(event_id="e1"))
        sender.send("v3:a", None, event(event_id="e2"))
        await sender.wait_idle()
    assert recorder.requests == []
    assert [(a.event_id, a.skipped, a.ok, a.attempt, a.url) for a in sender.attempts] == [
        ("e1", True, False, 0, ""),
        ("e2", True, False, 0, ""),
    ]
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "no webhook URL configured" in caplog.records[0].getMessage()


@pytest.mark.anyio
async def test_event_is_snapshotted_at_send():
    recorder = Recorder()
    client, sender = sender_for(recorder)
    async with client:
        built = event(state="answered")
        sender.send("v3:a", WebhookTarget("http://hook/a"), built)
        built["payload"]["state"] = "changed"
        await sender.wait_idle()
    assert recorder.bodies()[0]["data"]["payload"]["state"] == "answered"


@pytest.mark.anyio
async def test_unserialisable_event_raises_at_send():
    client, sender = sender_for(Recorder())
    async with client:
        with pytest.raises(TypeError):
            sender.send("v3:a", WebhookTarget("http://hook/a"), {"id": "x", "payload": object()})
        await asyncio.wait_for(sender.wait_idle(), timeout(1))


@pytest.mark.anyio
async def test_retry_then_failover_schedule_and_give_up(caplog):
    recorder = Recorder(statuses=[500] * 6)
    client, sender = sender_for(recorder)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a", failover_url="http://hook/b"), event())
        await sender.wait_idle()
    assert [(str(r.url), json.loads(r.content)["meta"]["attempt"]) for r in recorder.requests] == [
        ("http://hook/a", 1),
        ("http://hook/a", 2),
        ("http://hook/a", 3),
        ("http://hook/b", 4),
        ("http://hook/b", 5),
        ("http://hook/b", 6),
    ]
    assert [a.is_failover for a in sender.attempts] == [False] * 3 + [True] * 3
    assert [json.loads(r.content)["meta"]["delivered_to"] for r in recorder.requests][2:4] == [
        "http://hook/a",
        "http://hook/b",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 7
    assert warnings[-1] == "webhook call.answered for v3:a not delivered after 6 attempts"


@pytest.mark.anyio
async def test_each_call_keeps_its_order_across_many_events():
    recorder = Recorder(statuses=[503, 200, 503])
    client, sender = sender_for(recorder)
    async with client:
        for n in range(5):
            for call in ("v3:a", "v3:b"):
                sender.send(call, WebhookTarget("http://hook/x"), event(event_id=f"{call}-{n}", call_control_id=call))
        await sender.wait_idle()
    delivered = [b["data"]["id"] for b in recorder.bodies()]
    for call in ("v3:a", "v3:b"):
        mine = [d for d in delivered if d.startswith(call)]
        assert list(dict.fromkeys(mine)) == [f"{call}-{n}" for n in range(5)]
    assert all(a.ok for a in sender.attempts if a.attempt > 1)


@pytest.mark.anyio
async def test_spawn_is_used_when_given():
    names = []
    tasks = set()

    def spawn(coro, name):
        names.append(name)
        task = asyncio.create_task(coro)
        tasks.add(task)
        return task

    client, sender = sender_for(Recorder(), spawn=spawn)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a"), event())
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e2"))
        sender.send("v3:b", WebhookTarget("http://hook/a"), event(call_control_id="v3:b"))
        await sender.wait_idle()
        await asyncio.gather(*tasks)
    assert names == ["webhooks v3:a", "webhooks v3:b"]


@pytest.mark.anyio
async def test_a_new_worker_starts_after_the_previous_one_finished():
    recorder = Recorder()
    client, sender = sender_for(recorder)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e1"))
        await sender.wait_idle()
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e2"))
        await sender.wait_idle()
    assert [b["data"]["id"] for b in recorder.bodies()] == ["e1", "e2"]


@pytest.mark.anyio
async def test_aclose_lets_in_flight_deliveries_finish():
    recorder = Recorder(statuses=[500])
    client, sender = sender_for(recorder)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a"), event())
        await sender.aclose(grace=timeout(5))
    assert [a.ok for a in sender.attempts] == [False, True]


@pytest.mark.anyio
async def test_aclose_cancels_after_grace_and_drops_later_sends(caplog):
    recorder = Recorder()
    recorder.gate = asyncio.Event()  # never answers
    client, sender = sender_for(recorder, timeout=60)
    async with client:
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e1"))
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e2"))
        await sender.aclose(grace=0.05)
        await asyncio.wait_for(sender.wait_idle(), timeout(1))
        sender.send("v3:a", WebhookTarget("http://hook/a"), event(event_id="e3"))
        await asyncio.wait_for(sender.wait_idle(), timeout(1))
    assert len(recorder.requests) == 1
    (attempt,) = sender.attempts
    assert attempt.error is not None and attempt.error.startswith("cancelled")
    messages = [r.getMessage() for r in caplog.records]
    assert "webhooks for v3:a: 1 queued event(s) dropped" in messages  # e2, never started
    assert "webhook call.answered for v3:a dropped: the sender is closed" in messages  # e3


def test_constructor_validates():
    client = httpx.AsyncClient(transport=httpx.MockTransport(Recorder()))
    with pytest.raises(ValueError, match="timeout"):
        WebhookSender(client, KEY, timeout=0)
    with pytest.raises(ValueError, match="retry_delays"):
        WebhookSender(client, KEY, retry_delays=(1, -1))


@pytest.mark.parametrize("unix", [0.0, 1639577192.059436, 1639577192.999999, 4102444799.5])
def test_iso_timestamps_match_datetime_formatting(unix):
    from datetime import UTC, datetime

    from emulator.timestamps import iso_utc

    expected = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # datetime rounds to the nearest microsecond, iso_utc truncates: they may differ in the last digit.
    assert iso_utc(unix)[:20] == expected[:20] and abs(int(iso_utc(unix)[20:26]) - int(expected[20:26])) <= 1
