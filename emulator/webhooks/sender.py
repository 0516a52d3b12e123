"""Webhooks: a sender that delivers the envelope (``envelope.py``) signed, retried and in order.

``WebhookSender`` is the I/O: one asyncio worker per call drains that call's FIFO queue, so a call's events
arrive in the order they happened while different calls deliver in parallel.

Delivery follows what Telnyx documents: POST the exact signed bytes, any 2xx within the timeout is
success, anything else (3xx included: redirects are not followed) is a failure. The retry schedule is
the emulator's choice (Telnyx documents none for voice): after each failure wait the next of
``retry_delays`` and try the same URL again; when those run out, the failover URL gets the same
schedule. ``meta.attempt`` counts every attempt across both URLs and each body is signed afresh.
Fault rules (``faults.py``) that fired on an event change its delivery as docs/faults.md says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from emulator.calls.journal import redact_url
from emulator.faults.rules import FaultRule
from emulator.timestamps import iso_utc
from emulator.webhooks.envelope import (
    DeliveryAttempt,
    WebhookTarget,
    build_event,
    render_body,
    sent_signature,
    signed_headers,
)
from emulator.webhooks.faults import HOLD_S, EventFaults, describe, fault_headers, label
from emulator.webhooks.signing import SigningKey

__all__ = ["DeliveryAttempt", "WebhookSender", "WebhookTarget", "build_event"]  # build_event: the runtime's

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], Any]


# -- delivery --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Queued:
    target: WebhookTarget
    event: dict[str, Any]
    owner: object  # the caller's tag for the event, handed back to _record with each attempt
    faults: EventFaults | None = None  # the fault rules that fired on it (webhooks/faults.py)


@dataclass(slots=True)
class _First:
    """What faults do to the first attempt POSTed of a delivery: spoil it, and what its record says."""

    spoiler: FaultRule | None = None
    labels: list[str] = field(default_factory=list)
    error: str | None = None


class WebhookSender:
    """Delivers webhooks in the background; ``send`` only enqueues and never raises for delivery problems.

    ``client`` belongs to the caller (close it after ``aclose``). ``clock`` gives the unix time used for
    ``telnyx-timestamp`` and ``DeliveryAttempt.at``; ``spawn`` is the application's task owner.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        key: SigningKey,
        *,
        timeout: float = 2.0,
        retry_delays: Sequence[float] = (1.0, 2.0),
        clock: Callable[[], float] = time.time,
        spawn: Spawn | None = None,
        history: int = 1000,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        if any(delay < 0 for delay in retry_delays):
            raise ValueError(f"retry_delays must be >= 0, got {list(retry_delays)}")
        self._client = client
        self._key = key
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self._clock = clock
        self._spawn = spawn
        self.attempts: deque[DeliveryAttempt] = deque(maxlen=history)  # the latest, oldest first
        self._queues: dict[str, deque[_Queued]] = {}
        self._workers: dict[str, asyncio.Task[Any] | None] = {}
        self._arrivals: dict[str, asyncio.Event] = {}  # set when a call's worker holding an event gets a new one
        self.hold = HOLD_S  # how long out_of_order waits for the call's next event
        self._own_tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._warned_no_target = False

    # -- public ------------------------------------------------------------------------------

    def send(
        self,
        call_control_id: str,
        target: WebhookTarget | None,
        event: Mapping[str, Any],
        owner: object = None,
        faults: EventFaults | None = None,
    ) -> None:
        """Queue ``event`` (a ``build_event`` result) for ``call_control_id``'s webhook target.

        ``owner`` is an opaque tag passed back to ``_record`` with every attempt of this event; ``faults``
        are the fault rules that fired on it.

        The event is copied now (so later changes to it do not leak into the delivery); an event that
        is not JSON-serialisable raises ``TypeError`` here, as that is a bug, not a delivery problem.
        """
        if target is None:  # recorded as skipped, with the event that would have been sent
            self._skip(call_control_id, event, owner)
            return
        snapshot: dict[str, Any] = json.loads(json.dumps(event))
        if self._closed:
            log.warning("webhook %s for %s dropped: the sender is closed", _event_type(snapshot), call_control_id)
            return
        self._queues.setdefault(call_control_id, deque()).append(_Queued(target, snapshot, owner, faults))
        self._pending += 1
        self._idle.clear()
        if (arrival := self._arrivals.get(call_control_id)) is not None:
            arrival.set()
        if call_control_id not in self._workers:
            self._workers[call_control_id] = None
            started = self._start(self._drain(call_control_id), f"webhooks {call_control_id}")
            if isinstance(started, asyncio.Task) and self._workers.get(call_control_id) is None:
                self._workers[call_control_id] = started

    async def wait_idle(self) -> None:
        """Return once every queued event has been delivered or given up."""
        await self._idle.wait()

    async def aclose(self, grace: float) -> None:
        """Stop taking events; give in-flight deliveries ``grace`` seconds to finish, then cancel them."""
        self._closed = True
        if self._pending:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=max(grace, 0))
            except TimeoutError:
                pass
        tasks = [task for task in self._workers.values() if task is not None and not task.done()]
        tasks += [task for task in self._own_tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._pending:
            log.warning("webhooks: %d event(s) not delivered at shutdown", self._pending)
        self._queues.clear()
        self._workers.clear()
        self._pending = 0
        self._idle.set()

    # -- internals ---------------------------------------------------------------------------

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> Any:
        if self._spawn is not None:
            return self._spawn(coro, name)
        task = asyncio.create_task(coro, name=name)
        self._own_tasks.add(task)
        task.add_done_callback(self._own_tasks.discard)
        return task

    def _skip(self, call_control_id: str, event: Mapping[str, Any], owner: object) -> None:
        if not self._warned_no_target:
            self._warned_no_target = True
            log.info(
                "no webhook URL configured: webhooks (like %s for %s) are not sent", _event_type(event), call_control_id
            )
        record = self._record_of(call_control_id, event, "", 0, False, self._clock())
        record.error, record.skipped = "skipped: no webhook URL configured", True
        record.body = json.dumps({"data": event}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self._record(record, owner)

    async def _drain(self, call_control_id: str) -> None:
        self._workers[call_control_id] = asyncio.current_task()
        queue = self._queues[call_control_id]
        held: list[tuple[_Queued, FaultRule]] = []  # out_of_order: waiting for the call's next event
        try:
            while queue or held:
                if not queue and not await self._next_arrives(call_control_id, queue):
                    await self._release(call_control_id, held, None)  # no next event came: deliver them anyway
                    continue
                item = queue.popleft()
                held_back = item.faults.first("out_of_order") if item.faults is not None else None
                if held_back is not None:
                    held.append((item, held_back))
                    continue
                try:
                    await self._deliver(call_control_id, item)
                finally:
                    self._settle(1)
                await self._release(call_control_id, held, item)
        finally:
            # Normally nothing is left here. After a cancel or a bug the leftovers are dropped, so wait_idle
            # cannot hang on them.
            if left := len(queue) + len(held):
                log.warning("webhooks for %s: %d queued event(s) dropped", call_control_id, left)
                self._settle(left)
                queue.clear()
            if self._queues.get(call_control_id) is queue:
                del self._queues[call_control_id]
            self._workers.pop(call_control_id, None)

    async def _next_arrives(self, call_control_id: str, queue: deque[_Queued]) -> bool:
        """Wait up to ``hold`` seconds for the call's next event; whether one came."""
        arrival = self._arrivals[call_control_id] = asyncio.Event()
        try:
            async with asyncio.timeout(self.hold):
                await arrival.wait()
        except TimeoutError:
            pass
        finally:
            self._arrivals.pop(call_control_id, None)
        return bool(queue)

    async def _release(
        self, call_control_id: str, held: list[tuple[_Queued, FaultRule]], after: _Queued | None
    ) -> None:
        """Deliver the held events, the latest first, so each comes right after the event that followed it."""
        while held:
            item, rule = held.pop()
            kind = _event_type(item.event)
            if after is None:
                note = f"no next event within {self.hold:g} s"
                self._inject(item.owner, rule, call_control_id, f"{kind} held back {self.hold:g} s: no next event came")
            else:
                note = f"after {_event_type(after.event)}"
                self._inject(item.owner, rule, call_control_id, f"{kind} delivered after {_event_type(after.event)}")
            try:
                await self._deliver(call_control_id, item, label(rule, note))
            finally:
                self._settle(1)
            after = item

    def _settle(self, count: int) -> None:
        self._pending = max(self._pending - count, 0)
        if self._pending == 0:
            self._idle.set()

    async def _deliver(self, call_control_id: str, item: _Queued, fault: str | None = None) -> None:
        """The attempts of one event. ``fault``: what its first attempt's record says (out_of_order's)."""
        urls = [(item.target.url, False)]
        if item.target.failover_url:
            urls.append((item.target.failover_url, True))
        first = _First(labels=[fault] if fault else [])
        attempt = 0
        if item.faults is not None and await self._fault_first(call_control_id, item, first):
            attempt, urls = 1, urls[1:]  # the primary URL was skipped: attempt 1
        pauses = (0.0, *self.retry_delays)
        last = (urls[0][0], attempt + 1, urls[0][1])
        for url, is_failover, pause in [(url, failover, pause) for url, failover in urls for pause in pauses]:
            if pause:
                await asyncio.sleep(pause)
            attempt += 1
            last = (url, attempt, is_failover)
            if await self._attempt(call_control_id, item, url, attempt, is_failover, first):
                break
            first = _First()
        else:
            log.warning(
                "webhook %s for %s not delivered after %d attempts", _event_type(item.event), call_control_id, attempt
            )
        duplicate = item.faults.first("duplicate") if item.faults is not None else None
        if duplicate is not None:  # the last attempt again: the very same body, signed afresh
            self._inject(
                item.owner, duplicate, call_control_id, f"{_event_type(item.event)} delivered twice (same event id)"
            )
            await self._attempt(call_control_id, item, *last, _First(labels=[label(duplicate)]))

    async def _fault_first(self, call_control_id: str, item: _Queued, first: _First) -> bool:
        """Apply what the faults do before the first attempt: wait (delay), prepare the first attempt's spoiling
        and record; True when the primary URL is skipped (failover), recorded as failed attempt 1."""
        assert item.faults is not None
        kind = _event_type(item.event)
        delays = item.faults.delays
        for rule in delays:
            first.labels.append(label(rule))
            self._inject(item.owner, rule, call_control_id, f"{kind} delivered {rule.params['delay_ms']} ms late")
        if delays:
            await asyncio.sleep(sum(rule.params["delay_ms"] for rule in delays) / 1000)
        first.spoiler = item.faults.spoiler
        failover = item.faults.first("failover")
        if failover is None:
            return False
        if item.target.failover_url is None:
            first.labels.append(label(failover, "no failover URL: delivered to the primary"))
            first.error = f"fault {failover.id}: failover asked, but no failover URL is configured: sent to the primary"
            self._inject(
                item.owner, failover, call_control_id, f"{kind}: no failover URL, delivered to the primary URL"
            )
            return False
        self._inject(
            item.owner, failover, call_control_id, f"{kind}: primary URL skipped, delivered to the failover URL"
        )
        skipped = self._record_of(call_control_id, item.event, item.target.url, 1, False, self._clock())
        skipped.error, skipped.fault = f"fault {failover.id}: primary URL skipped", label(failover)
        self._record(skipped, item.owner)
        return True

    async def _attempt(
        self, call_control_id: str, item: _Queued, url: str, attempt: int, is_failover: bool, first: _First
    ) -> bool:
        spoiler = first.spoiler
        body = render_body(item.event, attempt=attempt, delivered_to=url)
        now = self._clock()
        headers = (
            fault_headers(self._key, now, body, spoiler) if spoiler else signed_headers(self._key, str(int(now)), body)
        )
        record = self._record_of(call_control_id, item.event, url, attempt, is_failover, now)
        record.body, record.signature = body, sent_signature(headers)
        record.error = first.error
        record.fault = "; ".join(first.labels + ([label(spoiler)] if spoiler is not None else [])) or None
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    url, content=body, headers=headers, follow_redirects=False, timeout=self.timeout
                )
            record.status = response.status_code
            record.ok = 200 <= response.status_code < 300
            if spoiler is not None and spoiler.kind == "timeout":  # the answer is lost: wait out the timeout
                await asyncio.sleep(max(self.timeout - (loop.time() - started), 0))
                record.error = f"timeout: the answer ({record.status}) was discarded by fault {spoiler.id}"
                record.status, record.ok = None, False
        except TimeoutError:
            record.error = f"timeout: no response within {self.timeout:g} s"
        except httpx.TimeoutException as exc:
            record.error = f"timeout: {type(exc).__name__}: {exc or 'no response'}"
        except asyncio.CancelledError:
            record.error = "cancelled: the sender was closed"
            raise
        except Exception as exc:  # any transport problem (refused, reset, bad URL) is a failed attempt
            record.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            record.latency_ms = round((loop.time() - started) * 1000, 3)
            self._record(record, item.owner)
        if spoiler is not None:
            self._inject(
                item.owner, spoiler, call_control_id, f"{record.event_type} attempt {attempt}: {describe(spoiler)}"
            )
        if not record.ok:
            reason = f"status {record.status}" if record.status is not None else record.error
            where = (record.event_type, call_control_id, attempt, redact_url(url), reason)
            log.warning("webhook %s for %s: attempt %d to %s failed (%s)", *where)
        else:
            done = (record.event_type, call_control_id, redact_url(url), record.status, record.latency_ms)
            log.info("webhook %s for %s -> %s: %d in %.0f ms", *done)
        return record.ok

    @staticmethod
    def _record_of(
        call_control_id: str, event: Mapping[str, Any], url: str, attempt: int, is_failover: bool, now: float
    ) -> DeliveryAttempt:
        """The record of an attempt starting at unix time ``now``; the attempt fills in how it went."""
        return DeliveryAttempt(
            event_id=str(event.get("id", "")),
            event_type=_event_type(event),
            call_control_id=call_control_id,
            url=url,
            attempt=attempt,
            is_failover=is_failover,
            status=None,
            latency_ms=0.0,
            error=None,
            at=iso_utc(now),
            ok=False,
        )

    def _inject(self, owner: object, rule: FaultRule, call_control_id: str, detail: str) -> None:
        """A fault rule acted on the delivery of an event (``owner``: its tag, as ``_record`` gets it)."""
        log.info("webhook fault %s (%s) for %s: %s", rule.id, rule.kind, call_control_id, detail)

    def record_request(self, owner: Any, attempt: DeliveryAttempt) -> None:
        """A request made to the app about ``owner``'s call that is not a webhook (TeXML's), logged with them."""
        self._record(attempt, owner)

    def _record(self, attempt: DeliveryAttempt, owner: object) -> None:
        self.attempts.append(attempt)


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("event_type", "?"))
