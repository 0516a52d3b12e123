"""The fixture's machinery: an event loop in a thread, uvicorn on a free port, and a tiny webhook receiver."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import h11
import uvicorn

from emulator.api.events import end_event_streams
from emulator.testing.settings import DEFAULT_TIMEOUT, HOST

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread; ``run`` executes a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="telnyx-emulator", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.loop.shutdown_asyncgens(), DEFAULT_TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEFAULT_TIMEOUT)
        if not self.thread.is_alive():
            self.loop.close()


async def serve_until_listening(server: uvicorn.Server) -> tuple[asyncio.Task[None], int]:
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(DEFAULT_TIMEOUT):
        # uvicorn has no "started" event to await; it sets a flag once its sockets listen.
        while not server.started:
            if task.done():
                raise RuntimeError("server exited during startup") from task.exception()
            await asyncio.sleep(0.005)
    return task, int(server.servers[0].sockets[0].getsockname()[1])


class PromptServer(uvicorn.Server):
    """uvicorn, stopped without its fixed waits: every test that uses the fixture stops an emulator.

    uvicorn checks ``should_exit`` every 0.1 s, and its graceful shutdown pauses 0.1 s after asking the
    connections to close before it waits for them. This server wakes at once when ``exit`` is called, and
    waits for the connections to close by polling from 1 ms up; the steps and their order are uvicorn's
    (the same in every release since 0.30, the oldest this project supports)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def exit(self) -> None:
        """Ask the server to shut down now (from its own event loop)."""
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        # uvicorn's own loop with its 0.1 s sleep replaced by a wait that exit() cuts short; on_tick keeps
        # doing uvicorn's housekeeping (the Date header, limits) and decides when to stop.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._exit.wait(), 0.1)
            except TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        end_event_streams(self.config.app)  # endless answers: the wait below would never see them finish
        for server in self.servers:  # stop accepting connections
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):  # idle ones close, busy ones finish first
            connection.shutdown()
        state, pause = self.server_state, 0.001
        while (state.connections or state.tasks) and not self.force_exit:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
        if not self.force_exit:
            await self.lifespan.shutdown()


def uvicorn_server(app: Any) -> PromptServer:
    config = uvicorn.Config(app, host=HOST, port=0, log_level="warning", lifespan="on", access_log=False)
    return PromptServer(config)


class WebhookServer:
    """A minimal HTTP/1.1 server (h11, the parser uvicorn uses) that answers every request 200 and hands
    it to ``on_request``. uvicorn would do, but takes 0.2 s to shut down, which every test would pay."""

    def __init__(self, on_request: Callable[[str, dict[str, str], bytes], None]) -> None:
        self.on_request = on_request
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Closing a connection ends its handler (it reads end-of-file). Cancelling the handler instead
        # would make asyncio's stream machinery log the cancellation as an error.
        for writer in self._connections.values():
            writer.close()
        tasks = list(self._connections)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=DEFAULT_TIMEOUT)
            for task in pending:
                task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        connection = h11.Connection(h11.SERVER)
        target, headers, body = "", {}, bytearray()
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    target = event.target.decode("latin-1")
                    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                    body = bytearray()
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    self.on_request(target.split("?", 1)[0], headers, bytes(body))
                    writer.write(connection.send(h11.Response(status_code=200, headers=[("content-length", "0")])))
                    writer.write(connection.send(h11.EndOfMessage()))
                    await writer.drain()
                    if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                        break
                    connection.start_next_cycle()  # keep-alive: the emulator reuses its connections
                else:  # ConnectionClosed, or a state h11 cannot continue from
                    break
        except (h11.RemoteProtocolError, ConnectionError):
            pass  # a client that speaks no HTTP or went away mid-request: nothing to record
        finally:
            writer.close()
            self._connections.pop(task, None)
