"""Webhooks: the event envelope Telnyx POSTs, and a sender that delivers it signed, retried and in order.

The builders (``build_event``, ``render_body``, ``signed_headers``) are pure. ``WebhookSender`` is the
I/O: one asyncio worker per call drains that call's FIFO queue, so a call's events arrive in the order
they happened while different calls deliver in parallel.

Delivery follows what Telnyx documents: POST the exact signed bytes, any 2xx within the timeout is
success, anything else (3xx included: redirects are not followed) is a failure. The retry schedule is
the emulator's choice (Telnyx documents none for voice): after each failure wait the next of
``retry_delays`` and try the same URL again; when those run out, the failover URL gets the same
schedule. ``meta.attempt`` counts every attempt across both URLs and each body is signed afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from emulator.calls.journal import redact_url
from emulator.timestamps import iso_utc
from emulator.webhooks.signing import SigningKey

log = logging.getLogger(__name__)

USER_AGENT = "telnyx-webhooks"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"

Spawn = Callable[[Coroutine[Any, Any, None], str], Any]


# -- pure builders ---------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """``2021-12-15T14:06:32.059436Z``: UTC, microseconds, ``Z``. ``moment`` must be timezone-aware."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_event(event_type: str, payload: Mapping[str, Any], *, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The ``data`` object of a webhook: ``{"record_type": "event", "event_type", "id", "occurred_at", "payload"}``."""
    return {
        "record_type": "event",
        "event_type": event_type,
        "id": event_id,
        "occurred_at": format_time(occurred_at),
        "payload": dict(payload),
    }


def render_body(event: Mapping[str, Any], *, attempt: int, delivered_to: str) -> bytes:
    """The POST body: ``{"data": event, "meta": {"attempt", "delivered_to"}}``, compact JSON in UTF-8."""
    document = {"data": event, "meta": {"attempt": attempt, "delivered_to": delivered_to}}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_headers(key: SigningKey, timestamp: str, body: bytes) -> dict[str, str]:
    """Every header Telnyx sends with a webhook, the signature computed over exactly ``body``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: key.sign(timestamp, body),
        TIMESTAMP_HEADER: timestamp,
    }


# -- delivery --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a call's webhooks go: the primary URL and, when it gives up, an optional failover URL."""

    url: str
    failover_url: str | None = None


@dataclass(slots=True)
class DeliveryAttempt:
    """One POST (or one skipped event: ``skipped`` true, ``attempt`` 0, no URL)."""

    event_id: str
    event_type: str
    call_control_id: str
    url: str
    attempt: int  # 1-based, counted across the primary and failover URLs
    is_failover: bool
    status: int | None  # None when no response came (timeout, connection error)
    latency_ms: float
    error: str | None
    at: str  # when the attempt started, ISO 8601 UTC
    ok: bool
    skipped: bool = False


@dataclass(slots=True)
class _Queued:
    target: WebhookTarget
    event: dict[str, Any]
    owner: object  # the caller's tag for the event, handed back to _record with each attempt


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
        self._own_tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._warned_no_target = False

    # -- public ------------------------------------------------------------------------------

    def send(
        self, call_control_id: str, target: WebhookTarget | None, event: Mapping[str, Any], owner: object = None
    ) -> None:
        """Queue ``event`` (a ``build_event`` result) for ``call_control_id``'s webhook target.

        ``owner`` is an opaque tag passed back to ``_record`` with every attempt of this event.

        The event is copied now (so later changes to it do not leak into the delivery); an event that
        is not JSON-serialisable raises ``TypeError`` here, as that is a bug, not a delivery problem.
        """
        if target is None:  # recorded as skipped; nothing of the event is kept but its id and type
            self._skip(call_control_id, event, owner)
            return
        snapshot: dict[str, Any] = json.loads(json.dumps(event))
        if self._closed:
            log.warning("webhook %s for %s dropped: the sender is closed", _event_type(snapshot), call_control_id)
            return
        self._queues.setdefault(call_control_id, deque()).append(_Queued(target, snapshot, owner))
        self._pending += 1
        self._idle.clear()
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
        self._record(
            DeliveryAttempt(
                event_id=str(event.get("id", "")),
                event_type=_event_type(event),
                call_control_id=call_control_id,
                url="",
                attempt=0,
                is_failover=False,
                status=None,
                latency_ms=0.0,
                error="skipped: no webhook URL configured",
                at=self._now_iso(),
                ok=False,
                skipped=True,
            ),
            owner,
        )

    async def _drain(self, call_control_id: str) -> None:
        self._workers[call_control_id] = asyncio.current_task()
        queue = self._queues[call_control_id]
        try:
            while queue:
                item = queue[0]
                try:
                    await self._deliver(call_control_id, item)
                finally:
                    queue.popleft()
                    self._settle(1)
        finally:
            # Normally the queue is empty here. After a cancel or a bug its leftovers are dropped, so
            # wait_idle cannot hang on them.
            if queue:
                log.warning("webhooks for %s: %d queued event(s) dropped", call_control_id, len(queue))
                self._settle(len(queue))
                queue.clear()
            if self._queues.get(call_control_id) is queue:
                del self._queues[call_control_id]
            self._workers.pop(call_control_id, None)

    def _settle(self, count: int) -> None:
        self._pending = max(self._pending - count, 0)
        if self._pending == 0:
            self._idle.set()

    async def _deliver(self, call_control_id: str, item: _Queued) -> None:
        urls = [(item.target.url, False)]
        if item.target.failover_url:
            urls.append((item.target.failover_url, True))
        attempt = 0
        for url, is_failover in urls:
            for retry in range(len(self.retry_delays) + 1):
                if retry:
                    await asyncio.sleep(self.retry_delays[retry - 1])
                attempt += 1
                if await self._attempt(call_control_id, item, url, attempt, is_failover):
                    return
        log.warning(
            "webhook %s for %s not delivered after %d attempts", _event_type(item.event), call_control_id, attempt
        )

    async def _attempt(self, call_control_id: str, item: _Queued, url: str, attempt: int, is_failover: bool) -> bool:
        event = item.event
        body = render_body(event, attempt=attempt, delivered_to=url)
        now = self._clock()
        headers = signed_headers(self._key, str(int(now)), body)
        record = DeliveryAttempt(
            event_id=str(event.get("id", "")),
            event_type=_event_type(event),
            call_control_id=call_control_id,
            url=url,
            attempt=attempt,
            is_failover=is_failover,
            status=None,
            latency_ms=0.0,
            error=None,
            at=_iso(now),
            ok=False,
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    url, content=body, headers=headers, follow_redirects=False, timeout=self.timeout
                )
            record.status = response.status_code
            record.ok = 200 <= response.status_code < 300
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
        if not record.ok:
            reason = f"status {record.status}" if record.status is not None else record.error
            log.warning(
                "webhook %s for %s: attempt %d to %s failed (%s)",
                record.event_type,
                call_control_id,
                attempt,
                redact_url(url),
                reason,
            )
        else:
            log.info(
                "webhook %s for %s -> %s: %d in %.0f ms",
                record.event_type,
                call_control_id,
                redact_url(url),
                record.status,
                record.latency_ms,
            )
        return record.ok

    def _record(self, attempt: DeliveryAttempt, owner: object) -> None:
        self.attempts.append(attempt)

    def _now_iso(self) -> str:
        return _iso(self._clock())


def _iso(unix: float) -> str:
    return iso_utc(unix)


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event.get("event_type", "?"))
