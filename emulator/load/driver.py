"""Runs a load plan against an emulator over its control plane, and gathers each call's record.

One asyncio task: it starts the calls the plan says are due (``POST /_emulator/calls``, each in a task of its
own so a slow answer never delays the next start), polls the live calls four times a second
(``GET /_emulator/calls?is_alive=true&view=brief``: a few fields per live call), reads each call once when it
has ended (``GET /_emulator/calls/{id}``: its history, metrics, streams and traffic), hangs up calls the app left
ringing past ``answer_timeout_s`` or that outlast ``call_limit_s`` (``POST /_emulator/calls/{id}/caller``), and
samples the counts for the calls-over-time plot. When the last call has ended it waits ``settle_s`` and reads the
calls' traffic once more: a failed ``call.hangup`` webhook is retried after the call's end. Everything it
reports comes from the emulator's own records.

It never loses what it gathered: an emulator that stops answering ends the run (``aborted``) with the records
so far, and so does a second Ctrl-C (``quit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from emulator.load import records
from emulator.load.plan import LoadPlan
from emulator.load.records import CUT, INTERRUPTED, UNANSWERED, LoadCall
from emulator.load.stats import FAILED_OUTCOMES, describe, metric_values

POLL_S = 0.25
PARALLEL_READS = 16  # final reads and hangups at once, when many calls end in one poll
POLL_FAILURES = 3  # polls in a row the emulator may fail before the run gives up on it
CREATE_FAILURES = 3  # refused creates in a row, before any call was created, that end the run (a bad scenario)
HANGUP = {"hangup": True}


@dataclass(frozen=True, slots=True)
class LoadConfig:
    emulator: str  # the emulator's base URL, http://127.0.0.1:8000
    api_key: str  # the key the app uses too: calls live in its namespace, where the app's commands reach them
    plan: LoadPlan
    webhook_url: str | None = None  # None: the emulator's own default
    from_number: str = "+13125559000"
    to: str = "+13125550123"
    seed: int = 0
    answer_timeout_s: float = 30.0  # a call still ringing this long is unanswered: its caller hangs up
    call_limit_s: float = 300.0  # a call up this long is cut: its caller hangs up
    settle_s: float = 3.0  # after the last call, how long its late webhook retries and commands may still count
    own_emulator: bool = False  # the run started the emulator (the report says so)


@dataclass(slots=True)
class Snapshot:
    """The run so far, for the progress display."""

    t_s: float
    started: int
    ringing: int
    up: int
    ended: int
    failed: int
    response_p50: float | None
    response_p95: float | None
    planned: int | None


@dataclass(slots=True)
class LoadRun:
    config: LoadConfig
    on_progress: Callable[[Snapshot], None] = lambda snapshot: None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # Ctrl-C: no new calls, hang up the rest
    quitting: asyncio.Event = field(default_factory=asyncio.Event)  # a second Ctrl-C: stop now
    calls: list[LoadCall] = field(default_factory=list)
    live: dict[str, LoadCall] = field(default_factory=dict)  # created and not yet read as ended
    timeline: list[dict[str, Any]] = field(default_factory=list)
    aborted: str | None = None  # why the run ended early, other than Ctrl-C
    _creating: int = 0
    _refused: int = 0  # creates refused in a row, while none has succeeded

    def stop(self) -> None:
        """Ctrl-C: start no more calls; the caller of every call still up hangs up, and the run ends after."""
        if self.stopping.is_set():
            self.quitting.set()
        self.stopping.set()

    async def run(self) -> dict[str, Any]:
        config = self.config
        started_at = datetime.now().astimezone()
        wall0, t0 = time.time(), time.monotonic()
        headers = {"Authorization": f"Bearer {config.api_key}"}
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=config.emulator, headers=headers, timeout=10, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            try:
                await self._drive(client, tasks, t0, wall0)
                if not self.quitting.is_set() and self.aborted is None:
                    await self._settle(client)
            except httpx.HTTPError as exc:
                self.aborted = f"lost the emulator at {config.emulator}: {exc!r}"
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        wall_s = round(time.monotonic() - t0, 3)
        plan = config.plan
        return {
            "version": 1,
            "run": {
                "started_at": started_at.isoformat(timespec="seconds"),
                "wall_s": wall_s,
                "emulator": config.emulator,
                "own_emulator": config.own_emulator,
                "webhook_url": config.webhook_url,
                "arrivals": plan.arrivals,
                "ramp_s": plan.ramp_s,
                "calls_planned": plan.calls,
                "duration_s": plan.duration_s,
                "scenarios": plan.mix.shares(),
                "interrupted": self.stopping.is_set(),
                "aborted": self.aborted,
            },
            "calls": [call.record or records.unfinished(call) for call in self.calls],
            "timeline": self.timeline,
        }

    async def _drive(self, client: httpx.AsyncClient, tasks: set[asyncio.Task[None]], t0: float, wall0: float) -> None:
        plan = self.config.plan
        rng = random.Random(self.config.seed)
        k = 0
        next_poll = 0.0
        failures = 0
        while not self.quitting.is_set():
            now = time.monotonic() - t0
            if now >= next_poll:
                try:
                    await self._poll(client, now, wall0)
                    failures = 0
                except httpx.HTTPError:
                    failures += 1
                    if failures >= POLL_FAILURES:
                        raise
                next_poll = now + POLL_S
                now = time.monotonic() - t0  # the calls it saw end make room at once
            capped = False
            while self._may_start(k, now):
                cap = plan.concurrency_at(now)
                if cap is not None and len(self.live) + self._creating >= cap:
                    capped = True
                    break
                call = LoadCall(k, plan.mix.pick(rng), plan.caller_number(self.config.from_number, k), now)
                self.calls.append(call)
                self._creating += 1  # now, not when the task runs: the cap and the end see it at once
                task = asyncio.create_task(self._create(client, call, t0))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                k += 1
            more = not self.stopping.is_set() and self.aborted is None and plan.may_start(k, now)
            if not more and not self._creating and not self.live:
                return
            wake = next_poll  # a full cap frees up only when a poll sees a call end
            if more and not capped and plan.rate is not None:
                wake = min(wake, plan.start_time(k))
            if more and plan.duration_s is not None:
                wake = min(wake, plan.duration_s)
            await self._sleep(max(0.0, min(wake - (time.monotonic() - t0), POLL_S)))

    def _may_start(self, k: int, now: float) -> bool:
        """Call ``k`` starts now: the run goes on (no Ctrl-C, not aborted), and the plan says it is due."""
        if self.stopping.is_set() or self.aborted is not None:
            return False
        plan = self.config.plan
        return plan.may_start(k, now) and plan.start_time(k) <= now

    async def _sleep(self, delay: float) -> None:
        if self.stopping.is_set():
            with contextlib.suppress(TimeoutError):  # a second Ctrl-C cuts it short
                await asyncio.wait_for(self.quitting.wait(), delay)
            return
        with contextlib.suppress(TimeoutError):  # Ctrl-C cuts it short: hang up at once
            await asyncio.wait_for(self.stopping.wait(), delay)

    async def _create(self, client: httpx.AsyncClient, call: LoadCall, t0: float) -> None:
        body: dict[str, Any] = {"from": call.from_, "to": self.config.to}
        if call.scenario is not None:
            body["scenario"] = call.scenario
        if self.config.webhook_url is not None:
            body["webhook_url"] = self.config.webhook_url
        try:
            response = await client.post("/_emulator/calls", json=body)
            if response.status_code != 201:
                self._refuse(call, f"the emulator refused the call: {response.status_code}: {_problems(response)}")
                return
            call.call_control_id = response.json()["data"]["call_control_id"]
            call.seen_s = time.monotonic() - t0
            self.live[call.call_control_id] = call
            self._refused = -1  # one was created: a refusal from now on is that call's, not the run's
        except httpx.HTTPError as exc:
            self._refuse(call, f"cannot reach the emulator: {exc!r}")
        finally:
            self._creating -= 1

    def _refuse(self, call: LoadCall, why: str) -> None:
        call.record = records.not_created(call, why)
        if self._refused >= 0:
            self._refused += 1
            if self._refused >= CREATE_FAILURES and self.aborted is None:
                self.aborted = f"no call could be created: {why}"

    async def _poll(self, client: httpx.AsyncClient, now: float, wall0: float) -> None:
        if self.live:
            response = await client.get("/_emulator/calls", params={"is_alive": "true", "view": "brief"})
            response.raise_for_status()
            alive = {item["call_control_id"]: item for item in response.json()["data"]}
            gone = [call for call_id, call in self.live.items() if call_id not in alive]
            for call_id, call in self.live.items():
                item = alive.get(call_id)
                if item is not None and item["state"] != call.state:
                    call.state, call.seen_s = item["state"], now
            await _parallel(self._read_final(client, call, wall0) for call in gone)
            due = [call for call in self.live.values() if self._hangup_due(call, now)]
            # A 422 if one ended meanwhile: the next poll reads its record, which says how it really ended.
            await _parallel(client.post(f"/_emulator/calls/{c.call_control_id}/caller", json=HANGUP) for c in due)
        self._sample(now)

    async def _read_final(self, client: httpx.AsyncClient, call: LoadCall, wall0: float) -> None:
        assert call.call_control_id is not None
        response = await client.get(f"/_emulator/calls/{call.call_control_id}")
        if response.status_code == 404:  # forgotten already: more calls ended at once than the history keeps
            call.record = records.lost(call)
        else:
            response.raise_for_status()
            call.record = records.ended(call, response.json()["data"], wall0)
        del self.live[call.call_control_id]

    def _hangup_due(self, call: LoadCall, now: float) -> bool:
        """Whether the run's caller hangs up ``call`` now: it rang or lasted too long, or Ctrl-C stops the run."""
        if call.hung_up is not None:
            return False
        ringing = call.state in ("parked", "bridging")
        if self.stopping.is_set():
            call.hung_up = INTERRUPTED
        elif ringing and now - call.seen_s >= self.config.answer_timeout_s:
            call.hung_up = UNANSWERED
        elif not ringing and now - call.seen_s >= self.config.call_limit_s:
            call.hung_up = CUT
        return call.hung_up is not None

    async def _settle(self, client: httpx.AsyncClient) -> None:
        """Wait for the webhooks and commands that come after a call's end, then read each call's traffic again."""
        ended = [
            call
            for call in self.calls
            if call.record is not None and call.record["outcome"] not in ("lost", "not_created")
        ]
        if not ended or self.config.settle_s <= 0:
            return
        await self._sleep(self.config.settle_s)

        async def reread(call: LoadCall) -> None:
            assert call.record is not None
            response = await client.get(f"/_emulator/calls/{call.call_control_id}")
            if response.status_code == 200:  # a call forgotten since keeps the figures of its final read
                call.record["errors"].update(records.traffic(response.json()["data"]))

        await _parallel(reread(call) for call in ended)

    def _sample(self, now: float) -> None:
        ringing = sum(1 for call in self.live.values() if call.state != "answered")
        done = [call.record for call in self.calls if call.record is not None]
        failed = sum(1 for record in done if record["outcome"] in FAILED_OUTCOMES)
        self.timeline.append(
            {
                "t_s": round(now, 3),
                "started": len(self.calls),
                "ringing": ringing,
                "up": len(self.live) - ringing,
                "ended": len(done),
                "failed": failed,
            }
        )
        # Of the calls ended so far: a live call's figures are read once, when it ends (polls stay cheap).
        response = describe(metric_values(done, "response_ms"))
        planned = self.config.plan.calls
        snapshot = Snapshot(
            now, len(self.calls), ringing, len(self.live) - ringing, len(done), failed,
            response["p50"], response["p95"], planned,
        )  # fmt: skip
        self.on_progress(snapshot)


async def _parallel(jobs: Iterable[Awaitable[object]]) -> None:
    """Run the jobs, at most PARALLEL_READS at once; the first error is raised once all have finished."""
    limit = asyncio.Semaphore(PARALLEL_READS)

    async def bounded(job: Awaitable[object]) -> None:
        async with limit:
            await job

    results = await asyncio.gather(*(bounded(job) for job in jobs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _problems(response: httpx.Response) -> str:
    try:
        return "; ".join(e.get("detail") or e["title"] for e in response.json()["errors"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
