"""Runs a load plan against an emulator over its control plane, and gathers each call's record.

One asyncio task: it starts the calls the plan says are due (``POST /_emulator/calls``, each in a task of its
own so a slow answer never delays the next start), polls the live calls twice a second
(``GET /_emulator/calls?is_alive=true``: cheap, only live calls), reads each call once when it has ended
(``GET /_emulator/calls/{id}``: its history, metrics, streams and traffic), hangs up calls the app left ringing
past ``answer_timeout_s`` or that outlast ``call_limit_s`` (``POST /_emulator/calls/{id}/caller``), and samples
the counts for the calls-over-time plot. Everything it reports comes from the emulator's own records.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from emulator.load.plan import LoadPlan
from emulator.load.stats import metric_values

POLL_S = 0.5


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


@dataclass(slots=True)
class _Call:
    index: int
    scenario: str | None
    from_: str
    created_s: float
    call_control_id: str | None = None
    state: str = "parked"
    seen_s: float = 0.0  # when the driver first saw it in its current state (driver clock)
    cut: str | None = None  # "unanswered" or "cut": the driver hung it up
    record: dict[str, Any] | None = None  # its final record, once ended


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
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set: start no more calls, finish the rest
    calls: list[_Call] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    _creating: int = 0

    async def run(self) -> dict[str, Any]:
        config = self.config
        plan = config.plan
        rng = random.Random(config.seed)
        headers = {"Authorization": f"Bearer {config.api_key}"}
        started_at = datetime.now().astimezone()
        wall0 = time.time()
        t0 = time.monotonic()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=config.emulator, headers=headers, timeout=30, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            k = 0
            next_poll = 0.0
            while True:
                now = time.monotonic() - t0
                if now >= next_poll:
                    await self._poll(client, t0, wall0)
                    next_poll = now + POLL_S
                    now = time.monotonic() - t0  # calls it saw end make room at once
                while not self.stopping.is_set() and plan.may_start(k, now) and plan.start_time(k) <= now:
                    cap = plan.concurrency_at(now)
                    if cap is not None and self._up() + self._creating >= cap:
                        break
                    call = _Call(k, plan.mix.pick(rng), plan.caller_number(config.from_number, k), now)
                    self.calls.append(call)
                    self._creating += 1  # now, not when the task runs: the cap and the end see it at once
                    task = asyncio.create_task(self._create(client, call, t0))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    k += 1
                more = not self.stopping.is_set() and plan.may_start(k, now)
                if not more and not self._creating and not self._up():
                    break
                wake = next_poll
                if more and plan.rate is not None:
                    wake = min(wake, plan.start_time(k))
                if more and plan.duration_s is not None:
                    wake = min(wake, plan.duration_s)
                delay = max(0.0, min(wake - (time.monotonic() - t0), POLL_S))
                if self.stopping.is_set():
                    await asyncio.sleep(delay)
                else:
                    with contextlib.suppress(TimeoutError):  # woken early by stop(): hang up at once
                        await asyncio.wait_for(self.stopping.wait(), delay)
            await asyncio.gather(*tasks)
        wall_s = round(time.monotonic() - t0, 3)
        records = [self._record(call, wall0) for call in self.calls]
        return {
            "version": 1,
            "run": {
                "started_at": started_at.isoformat(timespec="seconds"),
                "wall_s": wall_s,
                "emulator": config.emulator,
                "webhook_url": config.webhook_url,
                "arrivals": plan.arrivals,
                "ramp_s": plan.ramp_s,
                "calls_planned": plan.calls,
                "duration_s": plan.duration_s,
                "scenarios": plan.mix.shares(),
                "interrupted": self.stopping.is_set(),
            },
            "calls": records,
            "timeline": self.timeline,
        }

    def stop(self) -> None:
        """Start no more calls; the caller of every call still up hangs up, and the run ends once they have."""
        self.stopping.set()

    def _up(self) -> int:
        return sum(1 for call in self.calls if call.call_control_id is not None and call.record is None)

    async def _create(self, client: httpx.AsyncClient, call: _Call, t0: float) -> None:
        body: dict[str, Any] = {"from": call.from_, "to": self.config.to}
        if call.scenario is not None:
            body["scenario"] = call.scenario
        if self.config.webhook_url is not None:
            body["webhook_url"] = self.config.webhook_url
        try:
            response = await client.post("/_emulator/calls", json=body)
            if response.status_code != 201:
                call.record = _not_created(call, f"{response.status_code}: {_problems(response)}")
                return
            call.call_control_id = response.json()["data"]["call_control_id"]
            call.seen_s = time.monotonic() - t0
        except httpx.HTTPError as exc:
            call.record = _not_created(call, f"cannot reach the emulator: {exc!r}")
        finally:
            self._creating -= 1

    async def _poll(self, client: httpx.AsyncClient, t0: float, wall0: float) -> None:
        live = {c.call_control_id: c for c in self.calls if c.call_control_id is not None and c.record is None}
        if not live:
            self._sample(time.monotonic() - t0)
            return
        response = await client.get("/_emulator/calls", params={"is_alive": "true", "view": "brief"})
        response.raise_for_status()
        alive = {item["call_control_id"]: item for item in response.json()["data"]}
        now = time.monotonic() - t0
        for call_id, call in live.items():
            item = alive.get(call_id)
            if item is None:  # it ended since the last poll: read its final record once
                final = await client.get(f"/_emulator/calls/{call_id}")
                final.raise_for_status()
                call.record = _ended(call, final.json()["data"], wall0)
                continue
            if item["state"] != call.state:
                call.state, call.seen_s = item["state"], now
            await self._enforce_limits(client, call, now)
        self._sample(now)

    async def _enforce_limits(self, client: httpx.AsyncClient, call: _Call, now: float) -> None:
        if call.cut is not None:
            return
        ringing = call.state in ("parked", "bridging")
        if self.stopping.is_set():
            call.cut = "unanswered" if ringing else "cut"
        elif ringing and now - call.seen_s >= self.config.answer_timeout_s:
            call.cut = "unanswered"
        elif call.state == "answered" and now - call.seen_s >= self.config.call_limit_s:
            call.cut = "cut"
        else:
            return
        # 422 if it ended meanwhile: the next poll reads its record either way.
        await client.post(f"/_emulator/calls/{call.call_control_id}/caller", json={"hangup": True})

    def _sample(self, now: float) -> None:
        ringing = up = ended = failed = 0
        for call in self.calls:
            if call.record is not None:
                ended += 1
                failed += call.record["outcome"] != "completed"
            elif call.call_control_id is not None:
                ringing += call.state != "answered"
                up += call.state == "answered"
        self.timeline.append(
            {
                "t_s": round(now, 3),
                "started": len(self.calls),
                "ringing": ringing,
                "up": up,
                "ended": ended,
                "failed": failed,
            }
        )
        # Of the calls ended so far: a live call's figures are read once, when it ends (polls stay cheap).
        ended_calls = [call.record for call in self.calls if call.record is not None]
        responses = sorted(metric_values(ended_calls, "response_ms"))
        self.on_progress(
            Snapshot(
                now,
                len(self.calls),
                ringing,
                up,
                ended,
                failed,
                _nearest(responses, 0.50),
                _nearest(responses, 0.95),
                self.config.plan.calls,
            )
        )

    def _record(self, call: _Call, wall0: float) -> dict[str, Any]:
        if call.record is not None:
            return call.record
        # Still up when the run stopped (interrupted): what is known of it.
        return {**_base(call), "outcome": "cut", "call_control_id": call.call_control_id}


def _nearest(values: list[float], q: float) -> float | None:
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def _base(call: _Call) -> dict[str, Any]:
    return {
        "index": call.index,
        "call_control_id": call.call_control_id,
        "scenario": call.scenario or "default",
        "from": call.from_,
        "created_s": round(call.created_s, 3),
        "answered_s": None,
        "ended_s": None,
        "answer_ms": None,
        "outcome": None,
        "hangup_cause": None,
        "hangup_source": None,
        "errors": {"refused_streams": 0, "webhook_failures": 0, "app_4xx": 0},
        "error": None,
        "metrics": None,
        "frames": 0,
        "late_frames": 0,
        "max_lateness_ms": 0.0,
    }


def _not_created(call: _Call, why: str) -> dict[str, Any]:
    return {**_base(call), "outcome": "not_created", "error": why}


def _ended(call: _Call, data: Mapping[str, Any], wall0: float) -> dict[str, Any]:
    """The record of a call that has ended, from its JSON (``GET /_emulator/calls/{id}``)."""
    at = {entry["state"]: _epoch(entry["at"]) for entry in reversed(data["history"])}  # each state's first time
    answered, ended, ringing = at.get("answered"), at.get("ended"), at.get("parked", at.get("bridging"))
    if call.cut is not None:
        outcome = call.cut
    else:
        outcome = "completed" if answered is not None else "rejected"
    streams = data["streams"]
    traffic = data["traffic"]
    return {
        **_base(call),
        "answered_s": round(answered - wall0, 3) if answered is not None else None,
        "ended_s": round(ended - wall0, 3) if ended is not None else None,
        "answer_ms": round((answered - ringing) * 1000, 1) if answered is not None and ringing is not None else None,
        "outcome": outcome,
        "hangup_cause": data.get("hangup_cause"),
        "hangup_source": data.get("hangup_source"),
        "errors": {
            "refused_streams": sum(1 for stream in streams if stream["state"] == "failed"),
            "webhook_failures": traffic["webhook_failures"],
            "app_4xx": traffic["commands_refused"],
        },
        "metrics": data.get("metrics") if answered is not None else None,
        "frames": sum(stream["ticks"] for stream in streams),
        "late_frames": sum(stream["late_ticks"] for stream in streams),
        "max_lateness_ms": max((stream["max_lateness_ms"] for stream in streams), default=0.0),
    }


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _problems(response: httpx.Response) -> str:
    try:
        return "; ".join(e.get("detail") or e["title"] for e in response.json()["errors"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
