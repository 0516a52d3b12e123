"""A stream's WebSocket as the main process sees it when a media worker (``media/worker.py``) holds it.

``RemoteConnection`` stands where websockets' ``ClientConnection`` would: ``send``, ``close``, ``async for`` over
the app's messages, ``protocol`` and ``transport`` for how it ended and how full it is, and a ``write`` that
never awaits for the usual tick. So ``StreamSession`` runs the same code either way.

Flow control: a connection may have ``WINDOW`` batches sent and not yet written by its worker; past that,
``write`` refuses and the session awaits ``drain`` (at ``--speed 0`` this is what paces the call). A worker
that exits ends its streams with ``WorkerLost`` (``streaming.failed``, reason ``media_worker_lost``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Protocol

from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close
from websockets.protocol import State

from emulator.calls.models import StreamEndReason
from emulator.media.worker_wire import READ_CREDIT, Message

log = logging.getLogger(__name__)

_CLOSE_MARGIN = 2.0  # seconds
WINDOW = 8  # batches (ticks) a stream may have on their way to its worker's socket: 160 ms at speed 1


class WorkerLink(Protocol):
    """The worker holding the connection, as the connection uses it."""

    def post(self, message: Message) -> None: ...

    def forget(self, stream_id: str) -> None: ...


class RemoteConnectFailed(Exception):
    """The worker could not open the stream's WebSocket; ``detail`` says why, as a local connect would.
    ``lost``: the worker itself exited while it was connecting."""

    def __init__(self, detail: str, *, lost: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = StreamEndReason.MEDIA_WORKER_LOST if lost else StreamEndReason.CONNECTION_FAILED


class WorkerLost(ConnectionClosedError):
    """The worker holding the connection exited: the stream ends with ``media_worker_lost``."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, None)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class RemoteState:
    """What ``StreamSession`` reads of a connection's protocol state."""

    def __init__(self) -> None:
        self.state = State.OPEN
        self.close_rcvd: Close | None = None
        self.close_exc: ConnectionClosed | None = None
        self.extensions: list[Any] = []


class RemoteTransport:
    """What the stream watchdog and the faults use of a transport."""

    def __init__(self, connection: RemoteConnection) -> None:
        self._connection = connection

    def get_write_buffer_size(self) -> int:
        return self._connection.unacked  # batches the worker has not yet written

    def abort(self) -> None:
        self._connection.abort()


class RemoteConnection:
    def __init__(self, worker: WorkerLink, stream_id: str, close_timeout: float) -> None:
        self.worker = worker
        self.stream_id = stream_id
        self.close_timeout = close_timeout
        self.protocol = RemoteState()
        self.transport = RemoteTransport(self)
        self.ws = self  # FrameWriter's attribute: the faults reach the transport through it
        self.unacked = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._readable = asyncio.Event()
        self._closed = asyncio.Event()
        self._inbox: deque[str | bytes] = deque()
        self._handled = 0

    # -- writing (FrameWriter's interface, and ClientConnection's send) --------------------------

    def write(self, messages: list[str]) -> bool:
        """Hand a tick's frames to the worker now; False when the window is full or the connection is gone."""
        if self.protocol.state is not State.OPEN or self.unacked >= WINDOW:
            return False
        self._post_send(messages)
        return True

    async def send(self, messages: str | list[str]) -> None:
        """One message (ClientConnection.send), or a batch (FrameWriter.send); waits while the window is full."""
        self._raise_if_closed()
        self._post_send([messages] if isinstance(messages, str) else messages)
        await self.drain()

    async def drain(self) -> None:
        while self.unacked >= WINDOW:
            self._raise_if_closed()
            self._writable.clear()
            if self.unacked < WINDOW:
                break
            await self._writable.wait()
        self._raise_if_closed()

    def _post_send(self, messages: list[str]) -> None:
        self.unacked += 1
        self.worker.post(("send", self.stream_id, messages))

    def _raise_if_closed(self) -> None:
        if self.protocol.close_exc is not None:
            raise self.protocol.close_exc

    async def close(self, code: int = 1000) -> None:
        if self._closed.is_set():
            return
        self.worker.post(("close", self.stream_id, code))
        try:
            # The worker's own close waits close_timeout at most: past that (and a margin for a busy worker)
            # the connection is given up here, so a stream never waits on a worker forever.
            await asyncio.wait_for(self._closed.wait(), self.close_timeout + _CLOSE_MARGIN)
        except TimeoutError:
            log.warning("stream %s: its media worker did not report the close; connection dropped", self.stream_id)
            self.abort()
            self.closed(ConnectionClosedError(None, None))

    def abort(self) -> None:
        if not self._closed.is_set():
            self.worker.post(("abort", self.stream_id))

    async def __aenter__(self) -> RemoteConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.close()
        finally:
            self.worker.forget(self.stream_id)

    # -- reading -------------------------------------------------------------------------------

    def __aiter__(self) -> RemoteConnection:
        return self

    async def __anext__(self) -> str | bytes:
        while not self._inbox:
            exc = self.protocol.close_exc
            if exc is not None:
                if isinstance(exc, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise exc
            self._readable.clear()
            if not self._inbox and self.protocol.close_exc is None:
                await self._readable.wait()
        self._handled += 1
        if self._handled == READ_CREDIT // 2:  # the worker may read that many more
            self._handled = 0
            self.worker.post(("credit", self.stream_id, READ_CREDIT // 2))
        return self._inbox.popleft()

    # -- from the worker -----------------------------------------------------------------------

    def acked(self, count: int) -> None:
        self.unacked -= count
        if self.unacked < WINDOW:
            self._writable.set()

    def received(self, message: str | bytes) -> None:
        self._inbox.append(message)
        self._readable.set()

    def closed(self, exc: ConnectionClosed) -> None:
        state = self.protocol
        state.state, state.close_exc, state.close_rcvd = State.CLOSED, exc, exc.rcvd
        self.unacked = 0
        for event in (self._closed, self._writable, self._readable):
            event.set()
