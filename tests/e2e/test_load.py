"""``telnyx-emulator load`` end to end: the real command, in its own process, rings a real app (a webhook server
that answers through the REST API) on a real emulator, and its figures, errors, SLOs, JSON and HTML report
are checked against what the scenario and the app are known to do."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.load.command import free_port
from tests.e2e.test_metrics import TIMED  # first audio at 700 ms, the reply 300 ms after the caller's turn
from tests.servers import emulator_settings, run_emulator, timeout

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

KEY = "load-key"
FIRST = "+13125559000"  # the load's first caller; call k calls from FIRST + k
ON_THE_LINE = """at_end: stay
inbound:
  - tone: {frequency: 500, ms: 400}
"""


class App:
    """A voice app under load: answers each incoming call through the REST API, except as ``quirks`` say for the
    call from a given number: ``ignore`` (never answers), ``bad_command`` (answers, then sends a command the
    emulator refuses), ``fail_hangup`` (answers 500 to the call's call.hangup webhook)."""

    def __init__(self, api: str, quirks: dict[str, str] | None = None) -> None:
        self.api = api
        self.quirks = quirks or {}
        self.port = 0

    async def webhook(self, request: Request) -> Response:
        event = json.loads(await request.body())["data"]
        payload = event["payload"]
        quirk = self.quirks.get(payload.get("from", ""))
        if event["event_type"] == "call.hangup" and quirk == "fail_hangup":
            return Response(status_code=500)
        if event["event_type"] == "call.initiated" and quirk != "ignore":
            return Response(background=BackgroundTask(self.answer, payload["call_control_id"], quirk))
        return Response()

    async def answer(self, call_control_id: str, quirk: str | None) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=self.api, headers=headers) as client:
            await client.post(f"/calls/{call_control_id}/actions/answer", json={})
            if quirk == "bad_command":  # no stream to stop: 422
                await client.post(f"/calls/{call_control_id}/actions/streaming_stop", json={})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[App]:
        app = Starlette(routes=[Route("/webhooks", self.webhook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(timeout(10)):
            while not server.started:
                await asyncio.sleep(0.005)  # uvicorn sets a flag, nothing to await
        self.port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.should_exit = True
            await task

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks"


async def load(*args: str, seconds: float = 60, then: Callable[[Any], Any] | None = None) -> tuple[int, str, str]:
    """Run ``telnyx-emulator load ARGS`` in a process of its own; its exit status, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("TELNYX_EMULATOR_URL", "TELNYX_API_KEY")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator", "load", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    if then is not None:
        await then(process)
    async with asyncio.timeout(timeout(seconds)):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def alive_calls(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        return list((await client.get("/_emulator/calls?is_alive=true")).json()["data"])


async def until_answered(url: str, count: int) -> None:
    """Until the load has ``count`` calls answered at once on the emulator at ``url``."""
    async with (
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client,
        asyncio.timeout(timeout(20)),
    ):
        while len((await client.get("/_emulator/calls?state=answered")).json()["data"]) < count:
            await asyncio.sleep(0.05)  # polls a condition, bounded by the timeout


def number(k: int) -> str:
    return f"+1312555{9000 + k}"


async def test_a_load_run_measures_every_call_and_reports_errors_by_kind(tmp_path: Path):
    scenario = tmp_path / "timed.yaml"
    scenario.write_text(TIMED)
    quirks = {number(2): "ignore", number(3): "bad_command", number(4): "fail_hangup"}
    async with run_emulator(emulator_settings(speed=10)) as emulator, App(emulator.api, quirks).running() as app:
        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", app.url,
            "--calls", "6", "--concurrency", "3", "--scenario", str(scenario), "--answer-timeout", "1",
            "--settle", "0.5",
            "--json", str(tmp_path / "run.json"), "--report", str(tmp_path / "run.html"),
            "--slo", "response_p95_ms=300", "--slo", "first_audio_p50_ms=700", "--slo", "unanswered=0",
        )  # fmt: skip
        live = await alive_calls(emulator.url)
    assert status == 1, err  # the unanswered call breaches unanswered=0
    results = json.loads((tmp_path / "run.json").read_text())
    calls = {call["from"]: call for call in results["calls"]}
    assert [calls[number(k)]["outcome"] for k in range(6)] == ["completed"] * 2 + ["unanswered"] + ["completed"] * 3
    answered = [call for call in results["calls"] if call["outcome"] == "completed"]
    for call in answered:  # the scenario's timing, to the tick, whatever the load
        assert call["metrics"]["first_audio_ms"] == 700 and call["metrics"]["turns"][0]["response_ms"] == 300
        assert call["answer_ms"] is not None and 0 <= call["answer_ms"] < 5000
        assert call["hangup_cause"] == "normal_clearing" and call["hangup_source"] == "caller"
    ignored = calls[number(2)]
    assert ignored["metrics"] is None and ignored["hangup_cause"] == "originator_cancel"
    summary = results["summary"]
    assert summary["calls"] == {"started": 6, "answered": 5, "ended": 6, "failed": 1}
    assert summary["metrics"]["response_ms"]["count"] == 5 and summary["metrics"]["response_ms"]["p95"] == 300
    errors = summary["errors"]
    assert errors["unanswered"] == 1 and errors["app_4xx"] == 1 and errors["not_created"] == 0
    assert errors["webhook_failures"] == 3  # call.hangup to the failing app: the first try and two retries
    assert [(s["name"], s["ok"]) for s in summary["slo"]] == [
        ("response_p95_ms", True),
        ("first_audio_p50_ms", True),
        ("unanswered", False),
    ]
    assert results["timeline"] and results["timeline"][-1]["ended"] == 6
    assert live == []  # nothing left ringing
    assert "unanswered=0" not in out and "unanswered <= 0: 1  BREACHED" in out and "response_ms" in out
    page = (tmp_path / "run.html").read_text()
    assert page.count("<svg") == 3 and "unanswered" in page


async def test_without_an_emulator_it_starts_its_own_on_the_port_and_stops_it(tmp_path: Path):
    scenario = tmp_path / "short.yaml"
    scenario.write_text("inbound:\n  - tone: {frequency: 500, ms: 200}\n  - silence: {ms: 300}\n")
    port = free_port()
    async with App(f"http://127.0.0.1:{port}/v2").running() as app:
        status, out, err = await load(
            "--port", str(port), "--api-key", KEY, "--webhook-url", app.url, "--calls", "2",
            "--scenario", str(scenario), "--quiet",
        )  # fmt: skip
    assert status == 0, err
    assert out.startswith("2 calls in") and "answered 2" in out and "errors   none" in out
    assert f"started an emulator at http://127.0.0.1:{port}/v2" in err
    with pytest.raises(httpx.ConnectError):  # stopped at the end
        httpx.get(f"http://127.0.0.1:{port}/_emulator/health")


async def test_ctrl_c_stops_starting_calls_hangs_up_the_rest_and_still_reports(tmp_path: Path):
    scenario = tmp_path / "stay.yaml"
    scenario.write_text(ON_THE_LINE)
    async with run_emulator(emulator_settings(speed=1)) as emulator, App(emulator.api).running() as app:

        async def interrupt_once_calls_are_up(process: Any) -> None:
            await until_answered(emulator.url, 2)
            process.send_signal(signal.SIGINT)

        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", app.url, "--calls", "100",
            "--concurrency", "2", "--scenario", str(scenario), "--json", str(tmp_path / "run.json"),
            then=interrupt_once_calls_are_up,
        )  # fmt: skip
        live = await alive_calls(emulator.url)
    assert status == 130, err
    assert "stopping: no new calls" in err and "[interrupted]" in out
    results = json.loads((tmp_path / "run.json").read_text())
    assert results["run"]["interrupted"] is True and len(results["calls"]) == 2
    assert {call["outcome"] for call in results["calls"]} == {"interrupted"}  # not the app's fault
    assert results["summary"]["errors"]["cut"] == 0 and results["summary"]["calls"]["failed"] == 0
    assert live == []


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--calls", "3"], 2, "give --webhook-url"),
        (["--webhook-url", "http://127.0.0.1:9/w", "--slo", "latency=3"], 2, "no figure named 'latency'"),
        (["--webhook-url", "http://127.0.0.1:9/w", "--calls", "0"], 2, "--calls: 0 is out of range"),
        (["--emulator", "http://127.0.0.1:9", "--calls", "1"], 3, "cannot reach the emulator"),
    ],
)
async def test_usage_errors_and_an_unreachable_emulator(args: list[str], status: int, message: str):
    got, out, err = await load(*args)
    assert got == status and message in err and out == ""


async def test_a_second_ctrl_c_quits_at_once_and_still_reports(tmp_path: Path):
    scenario = tmp_path / "stay.yaml"
    scenario.write_text(ON_THE_LINE)
    async with run_emulator(emulator_settings(speed=1)) as emulator, App(emulator.api).running() as app:

        async def interrupt_twice(process: Any) -> None:
            await until_answered(emulator.url, 1)
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGINT)

        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", app.url, "--calls", "3",
            "--concurrency", "3", "--scenario", str(scenario), "--json", str(tmp_path / "run.json"),
            then=interrupt_twice,
        )  # fmt: skip
    assert status == 130, err
    assert "Traceback" not in err and "[interrupted]" in out
    assert json.loads((tmp_path / "run.json").read_text())["run"]["interrupted"] is True


async def test_an_emulator_that_goes_away_ends_the_run_with_what_it_gathered(tmp_path: Path):
    scenario = tmp_path / "stay.yaml"
    scenario.write_text(ON_THE_LINE)
    stack = AsyncExitStack()
    emulator = await stack.enter_async_context(run_emulator(emulator_settings(speed=1)))
    app = await stack.enter_async_context(App(emulator.api).running())

    async def stop_the_emulator_once_calls_are_up(process: Any) -> None:
        await until_answered(emulator.url, 2)
        await stack.aclose()

    try:
        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", app.url, "--calls", "2",
            "--scenario", str(scenario), "--json", str(tmp_path / "run.json"),
            then=stop_the_emulator_once_calls_are_up,
        )  # fmt: skip
    finally:
        await stack.aclose()
    assert status == 3, err
    assert "the run stopped early: lost the emulator" in err and out.startswith("2 calls in")
    results = json.loads((tmp_path / "run.json").read_text())
    assert results["run"]["aborted"].startswith("lost the emulator")
    assert [call["call_control_id"] is not None for call in results["calls"]] == [True, True]


async def test_a_scenario_that_does_not_exist_stops_the_run_after_a_few_refused_calls(tmp_path: Path):
    async with run_emulator(emulator_settings()) as emulator:
        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", "http://127.0.0.1:9/w",
            "--calls", "50", "--concurrency", "1", "--scenario", "no-such-scenario", "--quiet",
        )  # fmt: skip
        created = await alive_calls(emulator.url)
    assert status == 2, err
    assert "no call could be created: the emulator refused the call: 422" in err and "no-such-scenario" in err
    assert "started 0" in out and "not_created 3" in out and created == []


async def test_a_port_already_taken_is_refused_rather_than_loaded(tmp_path: Path):
    async with run_emulator(emulator_settings()) as emulator:
        port = emulator.url.rsplit(":", 1)[1]
        status, _, err = await load("--port", port, "--webhook-url", "http://127.0.0.1:9/w", "--calls", "1")
    assert status == 3 and f"cannot start an emulator on port {port}" in err and "--emulator URL" in err


async def test_a_rate_capped_by_concurrency_waits_without_spinning(tmp_path: Path):
    scenario = tmp_path / "short.yaml"
    scenario.write_text("inbound:\n  - tone: {frequency: 500, ms: 200}\n  - silence: {ms: 800}\n")
    async with run_emulator(emulator_settings(speed=1)) as emulator, App(emulator.api).running() as app:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        status, out, err = await load(
            "--emulator", emulator.url, "--api-key", KEY, "--webhook-url", app.url, "--calls", "6",
            "--rate", "20", "--concurrency", "2", "--scenario", str(scenario), "--settle", "0", "--quiet",
        )  # fmt: skip
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert status == 0, err
    assert "answered 6" in out
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert wall > 2.5 and cpu < 0.5 * wall  # three waves of 1 s calls; a busy loop would use a whole core
