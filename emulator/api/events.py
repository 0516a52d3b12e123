"""``GET /_emulator/events``: what happens in the caller's namespace, pushed as server-sent events.

One message per fact, as the control plane's lists show it (docs/control-plane.md):

    event: call       a call was created or changed state: its brief JSON (GET /_emulator/calls?view=brief)
    event: webhook    a webhook delivery attempt was recorded (an item of GET /_emulator/webhooks)
    event: command    a /v2 request was journaled (an item of GET /_emulator/commands)
    event: stream     a stream started or ended (GET /_emulator/streams/{stream_id})
    event: fault      a fault was injected (an item of GET /_emulator/faults/injected)
    event: reset      the namespace was reset
    event: lost       the reader fell too far behind; the stream ends

The publisher is pure (``calls/feed.py``); this module hooks it to the places that record those facts and
writes the stream. Auth is the control plane's Bearer key, so a browser reads it with ``fetch()`` (which
can send the header), not ``EventSource`` (which cannot).

uvicorn waits for open responses *before* the lifespan's shutdown, so an endless response would hold the
server up forever: the servers the emulator runs (``cli``'s, ``testing``'s) call ``end_event_streams``
first, and every stream ends at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from emulator.api.admin import brief_json, stream_json
from emulator.api.routes import namespace_of
from emulator.calls.feed import Feed
from emulator.calls.models import Call, StreamRecord
from emulator.calls.namespaces import Namespace, Namespaces
from emulator.faults.rules import Injected

log = logging.getLogger(__name__)

# A comment line after this long without a message, so proxies and browsers do not close an idle stream.
PING_INTERVAL = 15.0
PING = b": ping\n\n"


# -- publishing: the hooks ----------------------------------------------------------------------


def watch(namespace: Namespace) -> None:
    """Publish ``namespace``'s call state changes and injected faults on its feed (``Namespaces(watch=...)``)."""
    feed = namespace.feed

    def call_changed(call: Call) -> None:
        if feed.is_watched:
            feed.publish("call", brief_json(call))

    def fault_injected(injected: Injected) -> None:
        if feed.is_watched:
            feed.publish("fault", injected.as_json())

    namespace.store.observer = call_changed
    namespace.faults.observer = fault_injected


def stream_changed(namespaces: Namespaces, record: StreamRecord) -> None:
    """Publish a stream's start or end in its call's namespace (``Runtime.on_stream``).

    Attribution is by object, as the webhook log's: a call forgotten by a reset is nobody's any more."""
    namespace = namespaces.find(record.call.namespace)
    if namespace is None or not namespace.feed.is_watched:
        return
    if namespace.store.calls.get(record.spec.call_control_id) is record.call:
        namespace.feed.publish("stream", stream_json(record))


def end_event_streams(app: Any) -> None:
    """End every open event stream of ``app`` (an emulator's Starlette app), before a server waits for them."""
    state = getattr(getattr(app, "state", None), "emulator", None)
    if state is not None:
        state.namespaces.close_feeds()


# -- the stream ---------------------------------------------------------------------------------


class EventStream(Response):
    """An endless ``text/event-stream`` answer that writes one subscription of a feed until it ends."""

    media_type = "text/event-stream"

    def __init__(self, feed: Feed) -> None:
        # Subscribed now, before the answer starts: whatever happens once the client sees the headers is sent.
        self._wake = asyncio.Event()
        self.feed = feed
        self.subscription = feed.subscribe(self._wake.set)
        self.status_code = 200
        self.background = None
        # No body yet, so no Content-Length: the answer is chunked. no-transform and X-Accel-Buffering keep
        # proxies (nginx) from buffering it.
        self.init_headers({"cache-control": "no-cache, no-transform", "x-accel-buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscription = self.subscription
        watcher = asyncio.create_task(self._until_disconnected(receive), name="event-stream-disconnect")
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope["method"] != "HEAD":
                await self._write(send)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client went away while a message was being written (servers other than uvicorn)
            pass
        finally:
            self.feed.unsubscribe(subscription)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        log.debug("event stream ended: %s", subscription.ended)

    async def _write(self, send: Send) -> None:
        subscription = self.subscription
        while True:
            self._wake.clear()  # before taking: a message published from here on wakes the wait below
            # Read before taking: an ending puts its last message in the mailbox as it ends, so what is taken
            # now holds it. (Checked after the write instead, it would lose what came while the write waited.)
            is_ended = subscription.is_ended
            messages = subscription.take()
            if messages:
                body = b"".join(message.encode() for message in messages)
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if is_ended:
                return
            try:
                async with asyncio.timeout(PING_INTERVAL):
                    await self._wake.wait()
            except TimeoutError:
                await send({"type": "http.response.body", "body": PING, "more_body": True})

    async def _until_disconnected(self, receive: Receive) -> None:
        # The request has no body to read, so the next message is the client leaving; without this watch an
        # idle stream would learn of it only at its next write.
        while (await receive())["type"] != "http.disconnect":
            pass
        self.feed.unsubscribe(self.subscription)


async def events(request: Request) -> Response:
    return EventStream(namespace_of(request).feed)


def event_routes() -> list[Route]:
    return [Route("/_emulator/events", events, methods=["GET"])]
