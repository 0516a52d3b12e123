"""``GET /_emulator/events``: the namespace's server-sent events, read by a real HTTP client from a real emulator
under uvicorn, while a real webhook receiver and WebSocket target take what the calls send."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.api import events as events_module
from tests.contract import assert_documented
from tests.e2e.test_shutdown import emulator_process
from tests.receivers import WebhookReceiver
from tests.servers import WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CALLER, APP_NUMBER = "+13125550111", "+13125550122"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "control-plane.md"


def auth(key: str = "test-key") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Message:
    event: str
    id: int
    data: dict[str, Any]


@dataclass
class EventReader:
    """One open event stream: the messages and comment lines read so far, and waits for more."""

    response: httpx.Response
    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False

    def __post_init__(self) -> None:
        self.lines = self.response.aiter_lines()

    async def next(self) -> Message | None:
        """The next message (comments are kept aside); None once the stream has ended."""
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif fields:
                message = Message(fields["event"], int(fields["id"]), json.loads(fields["data"]))
                self.messages.append(message)
                return message
        self.ended = True
        return None

    async def until(self, predicate: Callable[[Message], bool], seconds: float = 5) -> Message:
        async with asyncio.timeout(timeout(seconds)):
            while (message := await self.next()) is not None:
                if predicate(message):
                    return message
        raise AssertionError(f"the stream ended first; read {self.messages}")

    async def all_of(self, *predicates: Callable[[Message], bool], seconds: float = 5) -> list[Message]:
        """Read until each predicate matches a message read so far, in any order; the first match of each."""

        def found() -> list[Message] | None:
            firsts = [next((m for m in self.messages if p(m)), None) for p in predicates]
            return None if None in firsts else firsts  # type: ignore[return-value]

        async with asyncio.timeout(timeout(seconds)):
            while (firsts := found()) is None:
                if await self.next() is None:
                    raise AssertionError(f"the stream ended first; read {self.messages}")
        return firsts

    async def rest(self, seconds: float = 5) -> list[Message]:
        """Every message left, to the end of the stream."""
        start = len(self.messages)
        async with asyncio.timeout(timeout(seconds)):
            while await self.next() is not None:
                pass
        return self.messages[start:]


@asynccontextmanager
async def reading(url: str, key: str = "test-key", **client: Any) -> AsyncIterator[EventReader]:
    async with httpx.AsyncClient(base_url=url, headers=auth(key), **client) as http:
        async with http.stream("GET", "/_emulator/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
            yield EventReader(response)


def is_call(state: str) -> Callable[[Message], bool]:
    return lambda m: m.event == "call" and m.data["state"] == state


def is_webhook(event_type: str) -> Callable[[Message], bool]:
    return lambda m: m.event == "webhook" and m.data["event_type"] == event_type


async def ring(client: httpx.AsyncClient) -> str:
    created = await client.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})
    assert created.status_code == 201, created.text
    return str(created.json()["data"]["call_control_id"])


async def test_ringing_and_answering_a_call_pushes_its_states_the_command_and_the_webhooks():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with reading(emulator.url) as feed, httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
                call_id = await ring(c)
                parked, _ = await feed.all_of(is_call("parked"), is_webhook("call.initiated"))
                (brief,) = (await c.get("/_emulator/calls", params={"view": "brief"})).json()["data"]
                assert parked.data == brief and brief["state"] == "parked"

                assert (await c.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
                answered, command, _ = await feed.all_of(
                    is_call("answered"), lambda m: m.event == "command", is_webhook("call.answered")
                )
                assert answered.data["call_control_id"] == call_id and parked.id < answered.id
                (entry,) = (await c.get("/_emulator/commands")).json()["data"]
                assert command.data == entry and entry["path"] == f"/v2/calls/{call_id}/actions/answer"
                attempts = (await c.get("/_emulator/webhooks")).json()["data"]
                pushed = [m.data for m in feed.messages if m.event == "webhook"]
                assert pushed == attempts and [a["event_type"] for a in attempts] == ["call.initiated", "call.answered"]

                await c.post(f"/v2/calls/{call_id}/actions/hangup", json={})
                await feed.until(is_call("ended"))
                ids = [m.id for m in feed.messages]
                assert ids == sorted(ids) and len(set(ids)) == len(ids)


async def test_a_stream_pushes_its_start_and_its_end():
    async with WsReceiver().running() as target, run_emulator(emulator_settings(speed=1)) as emulator:
        async with reading(emulator.url) as feed, httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
            call_id = await ring(c)
            await c.post(f"/v2/calls/{call_id}/actions/answer", json={"stream_url": target.url})
            started = await feed.until(lambda m: m.event == "stream")
            assert started.data["state"] == "streaming" and started.data["call_control_id"] == call_id
            assert started.data["started_at"] is not None and started.data["ended_at"] is None
            assert (await c.post(f"/v2/calls/{call_id}/actions/streaming_stop", json={})).status_code == 200
            ended = await feed.until(lambda m: m.event == "stream")
            assert ended.data["stream_id"] == started.data["stream_id"]
            assert ended.data["state"] == "stopped" and ended.data["end_reason"] == "stopped"
            stream = (await c.get(f"/_emulator/streams/{ended.data['stream_id']}")).json()["data"]
            assert ended.data["ended_at"] == stream["ended_at"] and ended.data["frames_sent"] == stream["frames_sent"]


async def test_an_injected_fault_is_pushed_as_the_fault_log_lists_it():
    async with run_emulator() as emulator:
        async with reading(emulator.url) as feed, httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
            rule = {"target": "api", "kind": "status", "status": 503, "action": "hangup", "times": 1}
            assert (await c.post("/_emulator/faults", json=rule)).status_code == 201
            assert (await c.post("/v2/calls/v3:faulty/actions/hangup", json={})).status_code == 503
            fault = await feed.until(lambda m: m.event == "fault")
            (injected,) = (await c.get("/_emulator/faults/injected")).json()["data"]
            assert fault.data == injected and injected["call_control_id"] == "v3:faulty"
            command = await feed.until(lambda m: m.event == "command")
            assert command.data["status"] == 503 and command.data["fault"] is not None


async def test_each_key_reads_only_its_own_namespace():
    async with run_emulator() as emulator:
        async with reading(emulator.url, "A") as a_feed, reading(emulator.url, "B") as b_feed:
            async with (
                httpx.AsyncClient(base_url=emulator.url, headers=auth("A")) as a,
                httpx.AsyncClient(base_url=emulator.url, headers=auth("B")) as b,
            ):
                a_call = await ring(a)
                await a_feed.until(is_call("parked"))
                b_call = await ring(b)
                first = await b_feed.until(lambda m: True)  # B's first message is its own call: it never saw A's
                assert first.event == "call" and first.data["call_control_id"] == b_call != a_call
                assert (await a.post("/_emulator/reset")).status_code == 200
                assert (await a_feed.until(lambda m: m.event == "reset")).data["calls"] == 1
                await b.get("/v2/calls/v3:probe")  # a message B does get, read after A's reset
                await b_feed.until(lambda m: m.event == "command")
                assert all(m.event != "reset" and m.data.get("call_control_id") != a_call for m in b_feed.messages)


async def test_a_request_without_a_key_is_refused_and_head_answers_at_once():
    async with run_emulator() as emulator, httpx.AsyncClient(base_url=emulator.url) as anonymous:
        refused = await anonymous.get("/_emulator/events")
        assert assert_documented(refused, "/_emulator/events")["errors"][0]["code"] == "10009"
        async with asyncio.timeout(timeout(5)):
            head = await anonymous.head("/_emulator/events", headers=auth())
        assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")


async def test_a_reader_that_leaves_is_unsubscribed_at_once_even_while_idle():
    async with run_emulator() as emulator:
        feed_of_key = emulator.state.namespaces.get("test-key").feed
        async with reading(emulator.url):
            assert feed_of_key.subscribers == 1
        async with asyncio.timeout(timeout(5)):  # long before its next ping would have found it gone
            while feed_of_key.is_watched:
                await asyncio.sleep(0.005)


async def test_an_idle_stream_sends_a_ping_comment(monkeypatch):
    monkeypatch.setattr(events_module, "PING_INTERVAL", 0.05)
    async with run_emulator() as emulator, reading(emulator.url) as feed:
        async with asyncio.timeout(timeout(5)):
            async for line in feed.lines:
                if line == ": ping":
                    break


async def test_a_reader_that_stops_reading_is_dropped_with_lost_instead_of_growing_memory():
    async with run_emulator(emulator_settings(max_body_bytes=1 << 20)) as emulator:
        feed_of_key = emulator.state.namespaces.get("test-key").feed
        feed_of_key.backlog = 8
        # A small receive buffer, so the emulator's writes block once a few messages are in flight.
        small = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
        async with reading(emulator.url, transport=small) as slow:
            assert feed_of_key.subscribers == 1
            async with httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
                # Each request is journaled with its 60 KB body: a command message of as much.
                bulky = {"client_state": "x" * 60_000}
                for _ in range(200):
                    await c.post("/v2/calls/v3:bulky/actions/hangup", json=bulky)
                    if not feed_of_key.is_watched:
                        break
                assert not feed_of_key.is_watched, "the reader was never dropped"
                sent = len(emulator.state.namespaces.get("test-key").journal)
            messages = await slow.rest(seconds=20)  # it reads again: what was in flight, then lost, then the end
            *read, lost = messages
            assert slow.ended and lost.event == "lost" and "command" in {m.event for m in read}
            assert [m.id for m in read] == list(range(1, len(read) + 1))  # nothing skipped up to the loss
            assert lost.data["first_missed_id"] == read[-1].id + 1 and lost.data["backlog"] == 8
            assert len([m for m in read if m.event == "command"]) < sent


async def test_stopping_the_emulator_with_a_reader_connected_ends_its_stream_at_once():
    emulator_context = run_emulator()
    emulator = await emulator_context.__aenter__()
    stopped = False
    try:
        async with reading(emulator.url) as feed:
            async with httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
                await ring(c)
            await feed.all_of(is_call("parked"), is_webhook("call.initiated"))  # skipped: no webhook URL
            loop = asyncio.get_running_loop()
            began = loop.time()
            await emulator_context.__aexit__(None, None, None)  # run_emulator allows it 15 s; this takes far less
            stopped = True
            assert loop.time() - began < timeout(2)
            assert await feed.rest() == [] and feed.ended
    finally:
        if not stopped:
            await emulator_context.__aexit__(None, None, None)


async def test_the_serve_command_stops_on_a_signal_with_a_reader_connected():
    async with emulator_process() as (process, url), reading(url) as feed:
        async with httpx.AsyncClient(base_url=url, headers=auth()) as c:
            await ring(c)
        await feed.all_of(is_call("parked"), is_webhook("call.initiated"))
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(timeout(10)):
            status = await process.wait()
        assert status == 0
        assert await feed.rest() == [] and feed.ended


def docs_example() -> str:
    section = DOCS.read_text().split("### `GET /_emulator/events`", 1)[1].split("\n### ", 1)[0]
    (command,) = re.findall(r"^curl -N .*$", section, flags=re.MULTILINE)
    return command


async def test_the_docs_curl_example_prints_the_messages_as_they_happen():
    async with run_emulator() as emulator:
        env = {"E": emulator.url, "AUTH": "Authorization: Bearer test-key", "PATH": "/usr/bin:/bin"}
        curl = await asyncio.create_subprocess_exec(
            "bash", "-c", docs_example(), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            assert curl.stdout is not None
            async with asyncio.timeout(timeout(10)):
                while not emulator.state.namespaces.get("test-key").feed.is_watched:  # curl is connected
                    await asyncio.sleep(0.01)
                async with httpx.AsyncClient(base_url=emulator.url, headers=auth()) as c:
                    call_id = await ring(c)
                lines = [(await curl.stdout.readline()).decode() for _ in range(3)]
        finally:
            curl.terminate()
            await curl.wait()
    assert lines[:2] == ["event: call\n", "id: 1\n"]
    assert json.loads(lines[2].removeprefix("data: "))["call_control_id"] == call_id
