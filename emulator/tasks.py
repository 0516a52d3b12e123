"""Tasks: the one owner of the emulator's background work.

Every task goes through ``spawn``, which logs and records an unexpected exception (``failures``) instead of
letting asyncio drop it; ``wait_idle`` lets tests await quiescence instead of sleeping; ``aclose`` gives what
runs a grace period, then cancels it. A ``lasting`` task (a call's media, alive as long as the call) does not
count as work in flight for ``wait_idle``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskFailure:
    name: str
    error: str


class Tasks:
    def __init__(self) -> None:
        self.failures: list[TaskFailure] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._lasting: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str, *, lasting: bool = False) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guard(coro, name), name=name)
        if lasting:
            self._lasting.add(task)
            task.add_done_callback(self._lasting.discard)
            return task
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

    @property
    def is_idle(self) -> bool:
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def aclose(self, grace: float) -> None:
        """Give every task ``grace`` seconds to finish, then cancel what is left and wait for it."""
        if not (self._tasks or self._lasting):
            return
        _done, pending = await asyncio.wait(self._tasks | self._lasting, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
