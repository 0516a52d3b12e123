"""Runtime: the one owner of background work. Turns command effects into tasks.

Every task goes through ``spawn``, which logs and records an unexpected exception instead of letting
asyncio drop it; ``wait_idle`` lets tests await quiescence instead of sleeping. The runtime also
observes streams and turns what happens to them into webhooks, as Telnyx does.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.calls import commands, events
from emulator.calls.commands import CommandContext, Effect, Emit, Ring, StartStream, StopStreams
from emulator.calls.ids import IdFactory
from emulator.calls.journal import redact_url
from emulator.calls.models import Call, StreamRecord, StreamState
from emulator.clock import Clock
from emulator.media.library import MediaLibrary
from emulator.media.recordings import RecordingStore
from emulator.media.session import StreamLimits, StreamSession
from emulator.webhooks.sender import WebhookSender, WebhookTarget, build_event

log = logging.getLogger(__name__)

# What a dialed callee's outcome ends the call with (hangup_cause).
CALLEE_CAUSES = {"busy": "user_busy", "reject": "call_rejected", "no_answer": "timeout"}


@dataclass(frozen=True, slots=True)
class TaskFailure:
    name: str
    error: str


@dataclass(frozen=True, slots=True)
class WebhookDefaults:
    """The emulated Call Control App's webhook URLs."""

    url: str | None = None
    failover_url: str | None = None


class Runtime:
    def __init__(
        self,
        library: MediaLibrary,
        clock: Clock,
        ids: IdFactory,
        context: Callable[[], CommandContext],
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        stream_limits: StreamLimits | None = None,
        webhook_defaults: WebhookDefaults = WebhookDefaults(),
        recordings: RecordingStore | None = None,
    ) -> None:
        self.library = library
        self.clock = clock
        self.ids = ids
        self.context = context
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.stream_limits = stream_limits or StreamLimits()
        self.webhook_defaults = webhook_defaults
        self.webhooks: WebhookSender | None = None  # attached by the app once its HTTP client exists
        self.sessions: dict[str, StreamSession] = {}
        self.recordings = recordings or RecordingStore()
        self.failures: list[TaskFailure] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- tasks -------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro, name), name=name)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._forget)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the single place background errors are caught: logged and kept
            log.exception("background task %s failed", name)
            self.failures.append(TaskFailure(name, f"{type(exc).__name__}: {exc}"))

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Until no stream, ring timer or webhook delivery is left running."""
        while True:
            await self._idle.wait()
            if self.webhooks is not None:
                await self.webhooks.wait_idle()
            if self._idle.is_set():
                return

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop every stream with a ``stop`` frame, give them ``grace`` seconds, then cancel."""
        for session in list(self.sessions.values()):
            session.request_stop("shutdown")
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.aclose(grace)

    # -- effects -----------------------------------------------------------------------------

    def apply(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StartStream):
                self._start_stream(effect.record)
            elif isinstance(effect, StopStreams):
                for record in effect.records:
                    session = self.sessions.get(record.spec.stream_id)
                    if session is not None:
                        session.request_stop(effect.reason)
            elif isinstance(effect, Emit):
                self.emit(effect.call, effect.event_type, effect.payload)
            elif isinstance(effect, Ring):
                self.spawn(self._ring(effect), name=f"ring-{effect.call.call_control_id}")

    def emit(self, call: Call, event_type: str, payload: dict[str, Any]) -> None:
        if self.webhooks is None:
            return
        event = build_event(event_type, payload, event_id=self.ids.event_id(), occurred_at=datetime.now(UTC))
        url = call.webhook_url or self.webhook_defaults.url
        target = WebhookTarget(url, self.webhook_defaults.failover_url) if url else None
        self.webhooks.send(call.call_control_id, target, event, owner=call)

    async def _ring(self, ring: Ring) -> None:
        call, callee = ring.call, ring.callee
        if callee.outcome == "no_answer":
            await self._sleep(ring.timeout_secs)
        else:
            await self._sleep(callee.ring_ms / 1000)
        if callee.outcome == "answer":
            outcome = commands.callee_answers(self.context(), call)
        else:
            outcome = commands.callee_hangs_up(self.context(), call, CALLEE_CAUSES[callee.outcome])
        self.apply(outcome.effects)

    async def _sleep(self, call_seconds: float) -> None:
        now = self.clock.monotonic()
        await asyncio.sleep(max(0.0, self.clock.media_deadline(now, call_seconds) - now))

    def _start_stream(self, record: StreamRecord) -> None:
        spec = record.spec
        media = self.library.media(spec.scenario, spec.codec)
        session = StreamSession(
            record,
            media,
            self.clock,
            self,
            ssl_context=self.ssl_context,
            connect_timeout=self.connect_timeout,
            limits=self.stream_limits,
        )
        self.sessions[spec.stream_id] = session
        self.recordings.add(session.recording)
        log.info(
            "stream %s: call %s -> %s (%s, %s, scenario %s)",
            spec.stream_id,
            spec.call_control_id,
            redact_url(spec.stream_url),
            spec.track,
            spec.codec,
            spec.scenario,
        )
        self.spawn(session.run(), name=f"stream-{spec.stream_id}")

    # -- StreamObserver ----------------------------------------------------------------------

    def stream_connected(self, record: StreamRecord) -> None:
        call = record.call
        self.emit(call, "streaming.started", events.streaming_started(call, record))

    def stream_dtmf(self, record: StreamRecord, digit: str) -> None:
        call = record.call
        # One caller, one key press: with several streams on a call only the first reports it.
        if next(iter(call.streams.values())) is record:
            self.emit(call, "call.dtmf.received", events.dtmf_received(call, digit))

    def stream_caller_hangup(self, record: StreamRecord, cause: str) -> None:
        self.apply(commands.caller_hangs_up(self.context(), record.call, cause).effects)

    def stream_ended(self, record: StreamRecord) -> None:
        session = self.sessions.pop(record.spec.stream_id, None)
        directory = self.recordings.directory
        if session is not None and directory is not None:
            recording = session.recording
            self.spawn(_save(recording.save, directory), name=f"save-recording-{recording.stream_id}")
        call = record.call
        if record.state is StreamState.FAILED:
            self.emit(call, "streaming.failed", events.streaming_failed(call, record))
        else:
            self.emit(call, "streaming.stopped", events.streaming_stopped(call, record))


async def _save(save: Callable[[Path], list[Path]], directory: Path) -> None:
    paths = await asyncio.to_thread(save, directory)
    log.info("recordings saved: %s", ", ".join(str(p) for p in paths))
