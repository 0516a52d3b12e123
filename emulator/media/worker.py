"""A media worker: a process that holds streams' WebSockets for the main process (``--media-workers``).

The main process keeps everything a call is (its state, its media engine, the REST API, webhooks) and builds
each stream's frames; a worker dials the app, masks and writes those frames, reads what the app sends back,
and reports how each connection ends. Most of a stream's CPU is the socket writes and the WebSocket framing
(docs/scaling.md), and a worker runs them on a core of its own.

Run as ``python -m emulator.media.worker``: batches (``media/worker_wire.py``) arrive on stdin and leave on
stdout; logs go to stderr. When stdin closes (the main process ended or let it go), every connection left is
dropped and the worker exits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import ssl
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake, InvalidURI

from emulator.media.wire import FrameWriter, dial
from emulator.media.worker_wire import READ_CREDIT, Batch, Message, Unpacker, pack, split
from emulator.tls import describe_connect_error, shared_tls_context, stream_tls_context

log = logging.getLogger("emulator.media.worker")


@functools.cache
def _tls_context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    """The context for wss:// targets, as the main process builds it: loaded once per worker, not per stream."""
    return stream_tls_context(Path(ca_file) if ca_file else None, insecure, shared_tls_context())


class Outbox:
    """What the worker says to the main process, sent as one batch per pass of the event loop."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self._messages: Batch = []
        self._acks: dict[str, int] = {}
        self._scheduled = False

    def post(self, message: Message) -> None:
        self._messages.append(message)
        self._schedule()

    def ack(self, stream_id: str) -> None:
        self._acks[stream_id] = self._acks.get(stream_id, 0) + 1
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        # Acks first: they only ever free the main process's window, and never cross a stream's "closed".
        batch: Batch = [("acked", stream_id, count) for stream_id, count in self._acks.items()]
        batch += self._messages
        self._acks, self._messages = {}, []
        for part in split(batch):  # the app's messages can be large: batches of a few MiB, not one huge one
            self._write(pack(part))


class Connection:
    """One stream's WebSocket in the worker."""

    def __init__(self, stream_id: str, outbox: Outbox, forget: Callable[[Connection], None]) -> None:
        self.stream_id = stream_id
        self.outbox = outbox
        self._forget = forget  # the worker drops it from its table (a failed open: the main process does too)
        self.ws: ClientConnection | None = None
        self.writer: FrameWriter | None = None
        self.waiting: deque[list[str]] = deque()  # batches behind a full socket buffer, in order
        self.draining: asyncio.Task[None] | None = None
        # Read credit: how many more of the app's messages may be forwarded before the main process has handled
        # them. Once the connection is closing it no longer counts: the main process may have stopped reading,
        # and "closed" must still reach it (websockets' own max_queue bounds what is left to forward).
        self.credit = READ_CREDIT
        self.closing = False
        self._may_read = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def open(
        self, url: str, headers: dict[str, str] | None, tls: tuple[str | None, bool], **dial_args: Any
    ) -> None:
        is_tls = url.lower().startswith("wss:")
        try:
            self.ws = await dial(url, headers=headers, ssl_context=_tls_context(*tls) if is_tls else None, **dial_args)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ValueError) as exc:
            self._failed(describe_connect_error(exc, is_tls))
            return
        except Exception as exc:  # anything else still ends the stream with a reason, and the worker goes on
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        self.writer = FrameWriter(self.ws)
        self.outbox.post(("opened", self.stream_id))
        self.spawn(self._read(self.ws))
        self.spawn(self._closing_when_closed(self.ws))

    def _failed(self, detail: str) -> None:
        self.outbox.post(("failed", self.stream_id, detail))
        self._forget(self)

    def grant(self, count: int) -> None:
        self.credit += count
        self._may_read.set()

    def stop_counting(self) -> None:
        self.closing = True
        self._may_read.set()

    async def _closing_when_closed(self, ws: ClientConnection) -> None:
        await ws.wait_closed()
        self.stop_counting()

    def send(self, messages: list[str]) -> None:
        writer = self.writer
        if writer is None:
            return  # never opened: the main process knows ("failed")
        if self.waiting or not writer.write(messages):
            self.waiting.append(messages)
            if self.draining is None:
                self.draining = asyncio.get_running_loop().create_task(self._drain(writer))
            return
        self.outbox.ack(self.stream_id)

    async def _drain(self, writer: FrameWriter) -> None:
        try:
            while self.waiting:
                try:
                    await writer.send(self.waiting[0])  # waits while the target reads slowly
                except ConnectionClosed:
                    self.waiting.clear()  # "closed" tells the main process
                    return
                self.waiting.popleft()
                self.outbox.ack(self.stream_id)
        finally:
            self.draining = None

    async def close(self, code: int) -> None:
        self.stop_counting()
        if self.draining is not None:
            await asyncio.gather(self.draining, return_exceptions=True)  # what was sent goes out before the close
        if self.ws is not None:
            await self.ws.close(code)

    def abort(self) -> None:
        self.stop_counting()
        if self.ws is not None:
            self.ws.transport.abort()

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                while self.credit <= 0 and not self.closing:  # the main process reads at its own pace
                    self._may_read.clear()
                    await self._may_read.wait()
                self.credit -= 1
                self.outbox.post(("received", self.stream_id, message))
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        protocol = ws.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        self.outbox.post(
            (
                "closed",
                self.stream_id,
                None if rcvd is None else (rcvd.code, rcvd.reason),
                None if sent is None else (sent.code, sent.reason),
                protocol.close_rcvd_then_sent,
                isinstance(protocol.close_exc, ConnectionClosedOK),
            )
        )


class Worker:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.connections: dict[str, Connection] = {}

    def handle(self, batch: Batch) -> None:
        for message in batch:
            kind, stream_id = message[0], message[1]
            if kind == "send":
                connection = self.connections.get(stream_id)
                if connection is not None:
                    connection.send(message[2])
            elif kind == "open":
                _, _, url, headers, tls, open_timeout, close_timeout, max_size = message
                connection = self.connections[stream_id] = Connection(stream_id, self.outbox, self._forget)
                connection.spawn(
                    connection.open(
                        url, headers, tls, open_timeout=open_timeout, close_timeout=close_timeout, max_size=max_size
                    )
                )
            elif kind == "close":
                connection = self.connections.get(stream_id)
                if connection is not None:
                    connection.spawn(connection.close(message[2]))
            elif kind == "abort":
                connection = self.connections.get(stream_id)
                if connection is not None:
                    connection.abort()
            elif kind == "credit":
                connection = self.connections.get(stream_id)
                if connection is not None:
                    connection.grant(message[2])
            elif kind == "forget":  # the stream has ended in the main process
                connection = self.connections.pop(stream_id, None)
                if connection is not None:
                    connection.abort()
                    for task in list(connection.tasks):
                        task.cancel()
            else:
                log.error("media worker: unknown message %r", kind)

    def _forget(self, connection: Connection) -> None:
        if self.connections.get(connection.stream_id) is connection:
            del self.connections[connection.stream_id]

    def abort_all(self) -> None:
        for connection in self.connections.values():
            connection.abort()


async def serve(stdin: int, stdout: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(stdin, "rb", buffering=0))
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(stdout, "wb", buffering=0))
    worker = Worker(Outbox(transport.write))
    unpacker = Unpacker()
    while data := await reader.read(1 << 20):
        for batch in unpacker.feed(data):
            worker.handle(batch)
    worker.abort_all()


def main() -> None:
    # Ctrl-C reaches the whole process group: the main process ends the streams (stop, close 1000) through
    # the workers, then closes their stdin, which is when a worker exits. It exits too if the main one dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(  # as the main process logs (cli.serve), at the level it runs at
        level=os.environ.get("TELNYX_EMULATOR_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # The batches own stdout: anything else printed (a library's warning) goes to stderr instead.
    stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        import uvloop

        uvloop.run(serve(0, stdout))
    except ImportError:
        asyncio.run(serve(0, stdout))


if __name__ == "__main__":
    main()
