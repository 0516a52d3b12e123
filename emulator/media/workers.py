"""Media workers, from the main process: the pool of worker processes (``--media-workers``).

``MediaWorkers`` starts ``count`` processes (``media/worker.py``) and gives each new stream to the one with the
fewest; the stream talks to it through a ``RemoteConnection`` (``media/remote_connection.py``). A worker that
exits ends its streams with ``media_worker_lost`` and is replaced; one that keeps exiting as it starts is given
up on, and new streams run in the main process. See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from emulator.config import AUTO
from emulator.media.app_audio import MAX_MESSAGE_BYTES
from emulator.media.remote_connection import RemoteConnectFailed, RemoteConnection, WorkerLost
from emulator.media.worker_wire import Batch, Message, Unpacker, WireError, pack

log = logging.getLogger(__name__)

# --media-workers auto: streams past this many go to workers. Measured: one process keeps p99 lateness under
# 5 ms to about 300 both-track streams on the 2-vCPU dev machine, and to 400 on a 16-core server measured
# earlier (docs/scaling.md).
AUTO_AFTER_STREAMS = 200
_QUICK_DEATH = 2.0  # seconds: a worker that exits sooner after its start is failing to start, not dying
_GIVE_UP_AFTER = 3  # quick deaths in a row: streams run in the main process from then on


class _Worker:
    """One worker process and the streams it holds."""

    def __init__(self, pool: MediaWorkers, process: asyncio.subprocess.Process) -> None:
        self.pool = pool
        self.process = process
        self.started = time.monotonic()
        self.connections: dict[str, RemoteConnection] = {}
        self._outbox: Batch = []
        self._scheduled = False
        self.reader = asyncio.get_running_loop().create_task(self._read(), name=f"media-worker-{process.pid}")

    def post(self, message: Message) -> None:
        self._outbox.append(message)
        if not self._scheduled:  # every stream's frames of this pass of the loop (a ticker slot) in one write
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._outbox = self._outbox, []
        stdin = self.process.stdin
        if batch and stdin is not None and not stdin.is_closing():
            stdin.write(pack(batch))

    def forget(self, stream_id: str) -> None:
        if self.connections.pop(stream_id, None) is not None:
            self.post(("forget", stream_id))

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        unpacker = Unpacker()
        problem = ""
        try:
            while data := await stdout.read(1 << 20):
                for batch in unpacker.feed(data):
                    self._handle(batch)
        except Exception as exc:  # a broken pipe (WireError) or a bug here: this worker cannot be trusted
            problem = f": {exc}"
            log.error("media worker (pid %s): %s", self.process.pid, exc, exc_info=not isinstance(exc, WireError))
            self.process.kill()
        finally:
            code = await self.process.wait()
            self.pool.lost(self, f"the media worker (pid {self.process.pid}) exited with code {code}{problem}")

    def _handle(self, batch: Batch) -> None:
        for message in batch:
            kind, stream_id = message[0], message[1]
            connection = self.connections.get(stream_id)
            if connection is None:
                continue  # a stream already forgotten
            if kind == "acked":
                connection.acked(message[2])
            elif kind == "received":
                connection.received(message[2])
            elif kind == "opened":
                if not connection.opened.done():
                    connection.opened.set_result(None)
            elif kind == "failed":
                self.connections.pop(stream_id, None)
                if not connection.opened.done():
                    connection.opened.set_exception(RemoteConnectFailed(message[2]))
            elif kind == "closed":
                _, _, rcvd, sent, rcvd_then_sent, ok = message
                frames = (None if rcvd is None else Close(*rcvd), None if sent is None else Close(*sent))
                kind_of = ConnectionClosedOK if ok else ConnectionClosedError
                connection.closed(kind_of(*frames, rcvd_then_sent))

    def fail_all(self, detail: str) -> None:
        for connection in self.connections.values():
            if not connection.opened.done():
                connection.opened.set_exception(RemoteConnectFailed(detail, lost=True))
            elif connection.protocol.close_exc is None:
                connection.closed(WorkerLost(detail))
        self.connections.clear()


def usable_cores() -> int:
    """The CPUs this process may run on (taskset and cpusets count; a container's CPU quota does not)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def media_workers(setting: int, *, ca_file: Path | None, insecure_tls: bool) -> MediaWorkers | None:
    """The pool ``--media-workers`` asks for. ``auto``: one worker per usable core past two (one core for the main
    process, one for the rest of the machine), taking the streams past the first ``AUTO_AFTER_STREAMS``; on a
    machine of two cores or fewer, none: there a worker only competes with the main process (docs/scaling.md)."""
    if setting == 0:
        return None
    if setting == AUTO:
        cores = usable_cores()
        count = max(0, cores - 2)
        if count == 0:
            log.info("--media-workers auto: %d core(s), no media workers", cores)
            return None
        return MediaWorkers(count, after=AUTO_AFTER_STREAMS, ca_file=ca_file, insecure_tls=insecure_tls)
    return MediaWorkers(setting, ca_file=ca_file, insecure_tls=insecure_tls)


class MediaWorkers:
    """``count`` media worker processes; a stream's WebSocket lives in the one that holds fewest. Streams
    started while fewer than ``after`` run stay in the main process; the workers start when first needed."""

    def __init__(self, count: int, *, after: int = 0, ca_file: Path | None = None, insecure_tls: bool = False) -> None:
        self.count = count
        self.after = after
        self.tls = (str(ca_file) if ca_file is not None else None, insecure_tls)
        self.workers: list[_Worker] = []
        self._closing = False
        self._starting: asyncio.Task[None] | None = None
        self.replaced = 0  # workers that exited and were started again
        self._quick_deaths = 0  # in a row
        self.broken = False  # they keep failing to start: new streams stay in the main process

    def takes(self, running_streams: int) -> bool:
        """Whether a stream started now, with ``running_streams`` already running, goes to a worker."""
        return not self.broken and running_streams >= self.after

    async def start(self) -> None:
        """Start the workers missing (all at first, or one that was lost); at most one start runs at a time."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._start(), name="media-worker-start")
        await asyncio.shield(self._starting)

    async def _start(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        started = []
        while len(self.workers) < self.count and not self._closing and not self.broken:
            try:
                process = await self._spawn()
            except OSError as exc:  # no process at all (out of memory, out of processes)
                self._give_up(f"cannot start a media worker: {exc}")
                break
            self.workers.append(_Worker(self, process))
            started.append(process.pid)
        if started:
            log.info("media workers: %s started (pid %s)", len(started), ", ".join(map(str, started)))

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emulator.media.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # This emulator package, as imported here; its log level, however it was set.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(sys.path),
                "TELNYX_EMULATOR_LOG_LEVEL": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            },
        )

    async def connect(
        self, stream_id: str, url: str, headers: dict[str, str] | None, *, open_timeout: float, close_timeout: float
    ) -> RemoteConnection:
        if len(self.workers) < self.count:  # the first stream to need them, or one was lost
            await self.start()
        if not self.workers:
            raise RemoteConnectFailed("no media worker is running")
        worker = min(self.workers, key=lambda w: len(w.connections))
        connection = worker.connections[stream_id] = RemoteConnection(worker, stream_id, close_timeout)
        worker.post(("open", stream_id, url, headers, self.tls, open_timeout, close_timeout, MAX_MESSAGE_BYTES))
        try:
            await connection.opened
        except BaseException:
            worker.forget(stream_id)
            raise
        return connection

    def lost(self, worker: _Worker, detail: str) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        if self._closing:
            worker.fail_all("the emulator is shutting down")
            return
        streams = len(worker.connections)
        worker.fail_all(detail)
        quick = time.monotonic() - worker.started < _QUICK_DEATH
        self._quick_deaths = self._quick_deaths + 1 if quick else 0
        if self.broken:
            return
        if self._quick_deaths >= _GIVE_UP_AFTER:
            self._give_up(f"{detail}; media workers keep exiting as they start")
            return
        log.warning("%s; its %d stream(s) fail, and a new worker takes its place", detail, streams)
        self.replaced += 1
        if self._starting is None or self._starting.done():
            delay = 0.5 * 2 ** (self._quick_deaths - 1) if quick else 0.0  # not a tight loop of failing starts
            self._starting = asyncio.get_running_loop().create_task(self._start(delay), name="media-worker-start")

    def _give_up(self, why: str) -> None:
        self.broken = True
        self.count = len(self.workers)
        log.error("%s: new streams run in the main process", why)

    async def aclose(self, grace: float = 5.0) -> None:
        """After the streams have ended: close each worker's stdin, so it exits; kill one that does not."""
        self._closing = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        workers, self.workers = list(self.workers), []
        for worker in workers:
            stdin = worker.process.stdin
            if stdin is not None:
                stdin.close()
        try:
            await asyncio.wait_for(asyncio.gather(*(worker.process.wait() for worker in workers)), grace)
        except TimeoutError:
            for worker in workers:
                if worker.process.returncode is None:
                    log.warning("media worker (pid %s) did not exit: killed", worker.process.pid)
                    worker.process.kill()
        await asyncio.gather(*(worker.reader for worker in workers), return_exceptions=True)
