"""Media faults on the streaming WebSocket: lost frames (with the gap in their counters), jitter (late frames in
a burst), reordered and duplicated frames, error frames, a connection dropped without a close frame, and a
stream stopped while the call stays up; each counted in the stream's record and logged, replayable by seed."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from emulator.config import Settings
from tests.contract import assert_documented
from tests.e2e.bots import scenario_file
from tests.receivers import WebhookReceiver
from tests.servers import Connection, WsReceiver, emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

AUTH = {"Authorization": "Bearer test-key"}
CALL = "v3:media-faults"  # lenient mode: an unknown id names an answered call
TONE = 100  # media frames of the tone scenario (2 s)
ONE_SECOND_THEN_STAY = "at_end: stay\ninbound:\n  - tone: {frequency: 1000, ms: 1000, level: -12}\n"


class Streamed:
    """What one stream did: the target's connection, the stream's record, and the namespace's fault log."""

    def __init__(self, conn: Connection, record: dict[str, Any], injected: list[dict[str, Any]]) -> None:
        self.conn, self.record, self.injected = conn, record, injected

    def media(self) -> list[dict[str, Any]]:
        return self.conn.of("media")

    def chunks(self) -> list[int]:
        return [int(m["media"]["chunk"]) for m in self.media()]

    def details(self) -> list[str]:
        return [item["detail"] for item in self.injected]


async def stream_with(rules: list[dict[str, Any]], settings: Settings | None = None) -> Streamed:
    """Add ``rules``, stream the call to a real WebSocket target until the stream ends; what happened."""
    settings = settings or emulator_settings(scenario="tone")
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            for rule in rules:
                assert (await client.post("/_emulator/faults", json=rule)).status_code == 201
            started = await client.post(f"/v2/calls/{CALL}/actions/streaming_start", json={"stream_url": target.url})
            assert started.status_code == 200, started.text
            conn = await target.wait_closed()
            async with asyncio.timeout(timeout(10)):
                await emulator.state.runtime.wait_idle()
            (record,) = (await client.get("/_emulator/streams")).json()["data"]
            response = await client.get(f"/_emulator/streams/{record['stream_id']}")
            record = assert_documented(response, "/_emulator/streams/{stream_id}")["data"]
            injected = (await client.get("/_emulator/faults/injected")).json()["data"]
    return Streamed(conn, record, injected)


def assert_counters_of_their_chunk(streamed: Streamed) -> None:
    """Every media frame carries the counters its chunk had without the fault: sequence (after start),
    chunk and the milliseconds before it (the tone scenario sends nothing but inbound media)."""
    for message in streamed.media():
        chunk = int(message["media"]["chunk"])
        assert message["sequence_number"] == str(chunk + 1)
        assert message["media"]["timestamp"] == str((chunk - 1) * 20)


async def test_lost_frames_leave_their_counters_unused():
    rule = {"target": "media", "kind": "loss", "every": 10, "burst": 3, "times": 2}
    streamed = await stream_with([rule])
    lost = {10, 11, 12, 22, 23, 24}  # the 10th frame asked, then the 10th after the burst (a burst is not asked)
    assert streamed.chunks() == [chunk for chunk in range(1, TONE + 1) if chunk not in lost]
    assert_counters_of_their_chunk(streamed)
    assert streamed.conn.events()[-1] == "stop" and streamed.conn.messages[-1]["sequence_number"] == str(TONE + 2)
    assert streamed.conn.close_code == 1000
    assert streamed.record["faults"] == {"loss": 2}
    assert streamed.record["media_frames_sent"] == TONE - 6
    assert streamed.record["frames_sent"] == TONE - 6 + 2  # start and stop
    assert streamed.details() == [
        "3 inbound frames lost from sequence 11 (chunk 10)",
        "3 inbound frames lost from sequence 23 (chunk 22)",
    ]
    assert {(item["rule_id"], item["target"], item["kind"], item["call_control_id"]) for item in streamed.injected} == {
        ("flt_1", "media", "loss", CALL)
    }


async def test_loss_by_probability_replays_the_same_frames_with_the_same_seed():
    rule = {"target": "media", "kind": "loss", "probability": 0.1, "burst": 2}

    async def lost(seed: int) -> set[int]:
        streamed = await stream_with([rule], emulator_settings(scenario="tone", seed=seed))
        assert_counters_of_their_chunk(streamed)
        return set(range(1, TONE + 1)) - set(streamed.chunks())

    first, again, other = await lost(7), await lost(7), await lost(8)
    assert first and first == again
    assert other != first


async def test_jitter_holds_frames_back_and_sends_them_late_in_one_burst(tmp_path):
    settings = emulator_settings(speed=1, seed=2, scenario=scenario_file(tmp_path, ONE_SECOND_THEN_STAY))
    rule = {"target": "media", "kind": "jitter", "jitter_ms": 400, "every": 15, "times": 1}
    async with WsReceiver().running() as target, run_emulator(settings) as emulator:
        async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
            await client.post("/_emulator/faults", json=rule)
            await client.post(f"/v2/calls/{CALL}/actions/streaming_start", json={"stream_url": target.url})
            conn = await target.wait_connection()
            await target.wait_for(lambda: len(conn.of("media")) >= 50, seconds=5)
            (injected,) = (await client.get("/_emulator/faults/injected")).json()["data"]
            (record,) = (await client.get("/_emulator/streams")).json()["data"]
    said = re.fullmatch(r"frames from sequence 16 held back (\d+) ms, then sent in one burst", injected["detail"])
    assert said is not None, injected
    held = int(said[1]) // 20
    assert 1 <= held <= 20 and record["faults"] == {"jitter": 1}  # seed 2: a hold of several ticks
    media = conn.of("media")
    streamed = Streamed(conn, record, [injected])
    assert streamed.chunks() == list(range(1, 51))  # late, not lost nor reordered: the counters are unchanged
    assert_counters_of_their_chunk(streamed)
    arrival = {int(m["media"]["chunk"]): conn.arrival[conn.messages.index(m)] for m in media}
    # Chunks 15 .. 15 + held - 1 waited for chunk 15 + held and came with it, in one write.
    burst = [arrival[chunk] for chunk in range(15, 15 + held + 1)]
    assert max(burst) - min(burst) < 0.015
    # Before them, a silence as long as the hold (give or take a loaded machine's lateness).
    assert arrival[15] - arrival[14] >= (held + 1) * 0.020 - 0.015


async def test_a_reordered_frame_arrives_after_the_next_one():
    streamed = await stream_with([{"target": "media", "kind": "reorder", "every": 20, "times": 2}])
    expected = list(range(1, TONE + 1))
    expected[19:21] = [21, 20]  # the 20th frame asked goes after its next one, which is not asked
    expected[40:42] = [42, 41]  # the 20th frame asked after that: match 40 is chunk 41
    assert streamed.chunks() == expected
    assert_counters_of_their_chunk(streamed)
    assert streamed.record["faults"] == {"reorder": 2}
    assert streamed.details() == [f"inbound frame {sequence} sent after the next one" for sequence in (21, 42)]


async def test_a_duplicated_frame_arrives_twice_with_the_same_sequence_number():
    streamed = await stream_with([{"target": "media", "kind": "duplicate", "every": 50, "times": 1}])
    media = streamed.media()
    assert streamed.chunks() == [*range(1, 51), *range(50, TONE + 1)]
    assert media[49] == media[50] and media[50]["sequence_number"] == "51"
    assert_counters_of_their_chunk(streamed)
    assert streamed.record["faults"] == {"duplicate": 1}
    assert streamed.record["media_frames_sent"] == TONE + 1
    assert streamed.details() == ["inbound frame 51 sent twice"]


async def test_error_frames_follow_the_frame_they_fired_on_with_the_rules_code_and_detail():
    rules = [
        {"target": "media", "kind": "error", "every": 30, "times": 1},
        {"target": "media", "kind": "error", "every": 60, "times": 1, "code": 100005, "detail": "Slow down."},
    ]
    streamed = await stream_with(rules)
    messages = streamed.conn.messages
    errors = [i for i, m in enumerate(messages) if m["event"] == "error"]
    # One rule of a kind at most acts on a frame: the second is not asked about frame 30, so its 60th is 61.
    assert [messages[i - 1]["media"]["chunk"] for i in errors] == ["30", "61"]
    stream_id = streamed.record["stream_id"]
    assert [messages[i] for i in errors] == [
        {
            "event": "error",
            "payload": {"code": 100002, "title": "unknown_error", "detail": "An unknown error occurred on the stream."},
            "stream_id": stream_id,
        },
        {
            "event": "error",
            "payload": {"code": 100005, "title": "rate_limit_reached", "detail": "Slow down."},
            "stream_id": stream_id,
        },
    ]
    assert streamed.chunks() == list(range(1, TONE + 1))
    assert_counters_of_their_chunk(streamed)  # an error frame has no sequence_number and uses none
    assert streamed.record["faults"] == {"error": 2}
    assert streamed.record["frames_sent"] == TONE + 2 and streamed.record["errors_sent"] == 0
    assert streamed.conn.close_code == 1000


async def test_a_drop_cuts_the_connection_without_a_close_frame_at_its_point():
    async with WebhookReceiver().running() as hooks:
        settings = emulator_settings(scenario="tone", webhook_url=hooks.url)
        streamed = await stream_with([{"target": "media", "kind": "drop", "at_ms": 600}], settings)
        await hooks.wait_until(lambda: "streaming.stopped" in event_types(hooks))
    assert streamed.chunks() == list(range(1, 31))  # timestamps 0 .. 580: everything before 600 ms
    assert_counters_of_their_chunk(streamed)
    assert "stop" not in streamed.conn.events()
    assert streamed.conn.close_code == 1006  # no close frame: closed abnormally
    record = streamed.record
    assert (record["state"], record["end_reason"], record["close_code"]) == ("stopped", "disconnected", None)
    assert record["error"] == "the emulator dropped the connection without a close frame (fault flt_1)"
    assert record["faults"] == {"drop": 1}
    assert streamed.details() == ["stream dropped without a close frame at 600 ms of its media"]


async def test_a_stop_sends_stop_and_closes_1000_while_the_call_stays_up(tmp_path):
    async with WebhookReceiver().running() as hooks:
        scenario = scenario_file(tmp_path, ONE_SECOND_THEN_STAY)
        settings = emulator_settings(scenario=scenario, webhook_url=hooks.url)
        async with WsReceiver().running() as target, run_emulator(settings) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as client:
                await client.post("/_emulator/faults", json={"target": "media", "kind": "stop", "at_ms": 400})
                await client.post(f"/v2/calls/{CALL}/actions/streaming_start", json={"stream_url": target.url})
                conn = await target.wait_closed()
                await hooks.wait_until(lambda: "streaming.stopped" in event_types(hooks))
                (record,) = (await client.get("/_emulator/streams")).json()["data"]
                call = (await client.get(f"/_emulator/calls/{CALL}")).json()["data"]
                # The call is up: another stream starts on it.
                again = await client.post(f"/v2/calls/{CALL}/actions/streaming_start", json={"stream_url": target.url})
                assert again.status_code == 200, again.text
                await target.wait_connection(1)
    assert [int(m["media"]["chunk"]) for m in conn.of("media")] == list(range(1, 21))  # 0 .. 380 ms
    assert conn.events()[-1] == "stop" and conn.messages[-1]["sequence_number"] == "22"
    assert conn.close_code == 1000
    assert (record["state"], record["end_reason"], record["close_code"]) == ("stopped", "stopped", 1000)
    assert record["faults"] == {"stop": 1}
    assert call["is_alive"] is True
    assert "call.hangup" not in event_types(hooks)


async def test_rules_for_another_call_or_target_touch_nothing():
    rules = [
        {"target": "media", "kind": "loss", "call_control_id": "v3:someone-else"},
        {"target": "media", "kind": "drop", "at_ms": 0, "stream_id": "not-this-stream"},
        {"target": "api", "kind": "status", "status": 503, "action": "speak"},
    ]
    streamed = await stream_with(rules)
    assert streamed.chunks() == list(range(1, TONE + 1))
    assert streamed.record["faults"] == {} and streamed.injected == []


def event_types(hooks: WebhookReceiver) -> list[str]:
    return [body["data"]["event_type"] for body in hooks.bodies()]


async def test_a_scenarios_faults_section_reaches_its_calls_streams(tmp_path):
    text = "inbound:\n  - tone: {frequency: 1000, ms: 400, level: -12}\nfaults:\n"
    text += "  - {target: media, kind: duplicate, every: 5, times: 1}\n"
    streamed = await stream_with([], emulator_settings(scenario=scenario_file(tmp_path, text)))
    assert streamed.chunks() == [1, 2, 3, 4, 5, 5, *range(6, 21)]
    assert streamed.record["faults"] == {"duplicate": 1}
    assert [item["rule_id"] for item in streamed.injected] == ["flt_1"]
