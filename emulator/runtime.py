"""Runtime: the one owner of background work. Turns command effects into stream tasks.

Every task goes through ``spawn``, which logs and records an unexpected exception instead of letting
asyncio drop it; ``wait_idle`` lets tests await quiescence instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from emulator.clock import Clock
from emulator.commands import Effect, StartStream, StopStreams
from emulator.media import MediaLibrary
from emulator.models import StreamRecord
from emulator.streaming import StreamSession

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskFailure:
    name: str
    error: str


class Runtime:
    def __init__(
        self,
        library: MediaLibrary,
        clock: Clock,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
    ) -> None:
        self.library = library
        self.clock = clock
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.sessions: dict[str, StreamSession] = {}
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
        await self._idle.wait()

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
        )
        self.sessions[spec.stream_id] = session
        log.info(
            "stream %s: call %s -> %s (%s, %s, scenario %s)",
            spec.stream_id,
            spec.call_control_id,
            spec.stream_url,
            spec.track,
            spec.codec,
            spec.scenario,
        )
        self.spawn(session.run(), name=f"stream-{spec.stream_id}")

    # -- StreamObserver ----------------------------------------------------------------------

    def stream_connected(self, record: StreamRecord) -> None:
        log.debug("stream %s connected", record.spec.stream_id)

    def stream_ended(self, record: StreamRecord) -> None:
        self.sessions.pop(record.spec.stream_id, None)
