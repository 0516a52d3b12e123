"""Call queues on a real emulator: enqueue and leave_queue, call.enqueued and call.dequeued (leave, timeout, hangup),
the /v2/queues resources as Telnyx shapes them, their errors, and docs/queues.md's complete test."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.contract import assert_documented
from tests.receivers import WebhookReceiver
from tests.servers import emulator_settings, run_emulator

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

pytest_plugins = ["pytester"]

AUTH = {"Authorization": "Bearer test-key"}
CALLER, APP_NUMBER = "+13125550111", "+13125550122"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def payloads(hooks: WebhookReceiver, event_type: str, call_id: str | None = None) -> list[dict]:
    found = [r.json["data"]["payload"] for r in hooks.requests if r.event_type == event_type]
    return [p for p in found if call_id is None or p["call_control_id"] == call_id]


def kinds(hooks: WebhookReceiver, call_id: str) -> list[str]:
    return [r.event_type for r in hooks.requests if r.json["data"]["payload"]["call_control_id"] == call_id]


async def answered_call(c: httpx.AsyncClient, scenario: str = "stay-on-line") -> str:
    created = await c.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER, "scenario": scenario})
    call_id = str(created.json()["data"]["call_control_id"])
    assert (await c.post(f"/v2/calls/{call_id}/actions/answer", json={})).status_code == 200
    return call_id


async def action(c: httpx.AsyncClient, call_id: str, name: str, **body: object) -> httpx.Response:
    return await c.post(f"/v2/calls/{call_id}/actions/{name}", json=body)


async def test_two_callers_wait_in_order_and_the_second_moves_up_when_the_first_leaves():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                first, second = await answered_call(c), await answered_call(c)
                for call_id in (first, second):
                    ok = await action(c, call_id, "enqueue", queue_name="support", client_state="cQ==")
                    assert ok.json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: len(payloads(hooks, "call.enqueued")) == 2)
                positions = {p["call_control_id"]: p["current_position"] for p in payloads(hooks, "call.enqueued")}
                assert positions == {first: 1, second: 2}
                assert payloads(hooks, "call.enqueued", second)[0]["queue"] == "support"

                listed = assert_documented(await c.get("/v2/queues/support/calls"), "/v2/queues/{queue_name}/calls")
                places = [(q["call_control_id"], q["queue_position"]) for q in listed["data"]]
                assert places == [(first, 1), (second, 2)]
                assert listed["meta"] == {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 2}
                queue = assert_documented(await c.get("/v2/queues/support"), "/v2/queues/{queue_name}")["data"]
                assert queue["current_size"] == 2 and queue["max_size"] == 100 and queue["record_type"] == "queue"
                assert {q["queue_id"] for q in listed["data"]} == {queue["id"]}
                seen = (await c.get(f"/_emulator/calls/{second}")).json()["data"]["queue"]
                assert seen["name"] == "support" and seen["position"] == 2

                # While it waits the call's media goes on: the app can still speak to it.
                speak = await action(c, second, "speak", payload="Please hold", voice="female")
                assert speak.status_code == 200
                await hooks.wait_until(lambda: payloads(hooks, "call.speak.ended", second), seconds=15)

                assert (await action(c, first, "leave_queue")).json() == {"data": {"result": "ok"}}
                await hooks.wait_until(lambda: payloads(hooks, "call.dequeued"))
                [left] = payloads(hooks, "call.dequeued")
                assert left["call_control_id"] == first and left["reason"] == "leave" and left["queue_position"] == 1
                assert left["client_state"] == "cQ==" and left["wait_time_secs"] >= 0
                now = (await c.get("/v2/queues/support/calls")).json()["data"]
                assert [(q["call_control_id"], q["queue_position"]) for q in now] == [(second, 1)]
                one = await c.get(f"/v2/queues/support/calls/{second}")
                assert assert_documented(one, "/v2/queues/{queue_name}/calls/{call_control_id}")["data"]["is_alive"]
                gone = await c.get(f"/v2/queues/support/calls/{first}")
                assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "10005"
                assert (await c.get(f"/_emulator/calls/{first}")).json()["data"]["queue"] is None
                everything = assert_documented(await c.get("/_emulator/queues"), "/_emulator/queues")["data"]
                assert [[q["call_control_id"] for q in queue["calls"]] for queue in everything] == [[second]]
                for call_id in (first, second):
                    assert (await action(c, call_id, "hangup")).status_code == 200
                await hooks.wait_until(lambda: len(payloads(hooks, "call.dequeued")) == 2)
    assert [p["reason"] for p in payloads(hooks, "call.dequeued")] == ["leave", "hangup"]
    assert emulator.state.runtime.failures == []


async def test_max_wait_time_secs_takes_the_call_out_with_reason_timeout_and_the_call_goes_on():
    async with WebhookReceiver().running() as hooks:
        # --speed 8: two seconds of the call's media time pass in a quarter of a second.
        async with run_emulator(emulator_settings(webhook_url=hooks.url, speed=8)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await answered_call(c)
                joined = await action(c, call_id, "enqueue", queue_name="short", max_wait_time_secs=2)
                assert joined.status_code == 200
                await hooks.wait_until(lambda: payloads(hooks, "call.dequeued"), seconds=10)
                [timed_out] = payloads(hooks, "call.dequeued")
                assert timed_out["reason"] == "timeout" and timed_out["queue"] == "short"
                assert (await c.get("/v2/queues/short/calls")).json()["data"] == []
                assert (await action(c, call_id, "hangup")).status_code == 200  # still on the line
    assert emulator.state.runtime.failures == []


async def test_a_caller_who_hangs_up_while_queued_leaves_with_reason_hangup(tmp_path):
    (tmp_path / "brief.yaml").write_text("inbound:\n  - silence: {ms: 600}\n")  # then the caller hangs up
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                call_id = await answered_call(c, str(tmp_path / "brief.yaml"))
                assert (await action(c, call_id, "enqueue", queue_name="support")).status_code == 200
                await hooks.wait_until(lambda: payloads(hooks, "call.dequeued"), seconds=10)
                assert (await c.get("/v2/queues/support")).json()["data"]["current_size"] == 0
    [dequeued] = payloads(hooks, "call.dequeued")
    assert dequeued["reason"] == "hangup" and dequeued["queue_position"] == 1
    order = kinds(hooks, call_id)
    assert order.index("call.enqueued") < order.index("call.hangup") < order.index("call.dequeued")
    assert payloads(hooks, "call.hangup")[0]["hangup_source"] == "caller"


async def test_refusals_come_in_telnyxs_envelope():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                ringing = (await c.post("/_emulator/calls", json={"from": CALLER, "to": APP_NUMBER})).json()["data"]
                early = await action(c, ringing["call_control_id"], "enqueue", queue_name="support")
                assert early.status_code == 422 and early.json()["errors"][0]["code"] == "90034"
                first, second = await answered_call(c), await answered_call(c)
                blank = (await action(c, first, "enqueue", queue_name="")).json()["errors"][0]
                assert blank["code"] == "10004" and blank["source"] == {"pointer": "/queue_name"}
                missing = (await action(c, first, "enqueue")).json()["errors"][0]
                assert missing["code"] == "10004"
                size = (await action(c, first, "enqueue", queue_name="one", max_size=0)).json()["errors"][0]
                assert size["code"] == "10033" and size["source"] == {"pointer": "/max_size"}
                assert (await action(c, first, "enqueue", queue_name="one", max_size=1)).status_code == 200
                full = await action(c, second, "enqueue", queue_name="one")
                assert full.status_code == 422 and full.json()["errors"][0]["code"] == "90036"
                again = await action(c, first, "enqueue", queue_name="one")
                assert again.json()["errors"][0]["code"] == "90038"
                outside = await action(c, second, "leave_queue")
                assert outside.status_code == 422 and outside.json()["errors"][0]["title"] == "Call not in queue"
                unknown = await c.get("/v2/queues/nope")
                assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "10005"
                busy = await c.delete("/v2/queues/one")
                assert busy.status_code == 400 and busy.json()["errors"][0]["code"] == "90050"
                page = await c.get("/v2/queues", params={"page[size]": "0"})
                assert page.status_code == 422 and page.json()["errors"][0]["code"] == "10015"
                assert (await c.get("/v2/queues", headers={"Authorization": ""})).status_code == 401
                other = await c.get("/v2/queues", headers={"Authorization": "Bearer other-key"})
                assert other.json() == {"data": [], "meta": {"page_number": 1, "page_size": 20, "total_pages": 0,
                                                             "total_results": 0}}  # fmt: skip
                for call_id in (first, second):
                    await action(c, call_id, "hangup")
    assert emulator.state.runtime.failures == []


async def test_queues_are_made_changed_paged_and_deleted_and_a_call_is_removed_by_force():
    async with WebhookReceiver().running() as hooks:
        async with run_emulator(emulator_settings(webhook_url=hooks.url)) as emulator:
            async with httpx.AsyncClient(base_url=emulator.url, headers=AUTH) as c:
                made = await c.post("/v2/queues", json={"queue_name": "sales"})
                assert assert_documented(made, "/v2/queues")["data"]["max_size"] == 300
                taken = await c.post("/v2/queues", json={"queue_name": "sales"})
                assert taken.status_code == 422 and taken.json()["errors"][0]["source"] == {"pointer": "/queue_name"}
                changed = await c.post("/v2/queues/sales", json={"max_size": 2})
                assert assert_documented(changed, "/v2/queues/{queue_name}")["data"]["max_size"] == 2
                for name in ("a", "b"):
                    assert (await c.post("/v2/queues", json={"queue_name": name})).status_code == 200
                paged = await c.get("/v2/queues", params={"page[number]": "2", "page[size]": "2"})
                body = assert_documented(paged, "/v2/queues")
                assert [q["name"] for q in body["data"]] == ["b"]
                assert body["meta"] == {"page_number": 2, "page_size": 2, "total_pages": 2, "total_results": 3}
                assert (await c.delete("/v2/queues/b")).status_code == 204
                assert (await c.get("/v2/queues/b")).status_code == 404

                kept, live = await answered_call(c), await answered_call(c)
                for call_id in (kept, live):
                    assert (await action(c, call_id, "enqueue", queue_name="sales")).status_code == 200
                patched = await c.patch(f"/v2/queues/sales/calls/{kept}", json={"keep_after_hangup": True})
                assert patched.status_code == 204
                await action(c, kept, "hangup")
                await hooks.wait_until(lambda: payloads(hooks, "call.hangup", kept))
                still = (await c.get(f"/v2/queues/sales/calls/{kept}")).json()["data"]
                assert still["is_alive"] is False and still["queue_position"] == 1
                assert (await c.delete(f"/v2/queues/sales/calls/{kept}")).status_code == 204  # no webhook: it ended
                assert (await c.delete(f"/v2/queues/sales/calls/{live}")).status_code == 204
                await hooks.wait_until(lambda: payloads(hooks, "call.dequeued"))
                assert (await c.delete("/v2/queues/sales")).status_code == 204
                await action(c, live, "hangup")
                await hooks.wait_until(lambda: payloads(hooks, "call.hangup", live))
    assert [(p["call_control_id"], p["reason"]) for p in payloads(hooks, "call.dequeued")] == [(live, "leave")]
    assert emulator.state.runtime.failures == []


def test_the_pages_complete_test_passes_as_written(pytester):
    text = (DOCS / "queues.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(# (test_\w+\.py)\n.*?)```", text, flags=re.DOTALL)
    assert [name for _, name in blocks] == ["test_call_queue.py"]
    pytester.makepyfile(**{name.removesuffix(".py"): code for code, name in blocks})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
