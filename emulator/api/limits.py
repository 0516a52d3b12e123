"""BodyLimit: answer a request body over ``--max-body-bytes`` with 413 in Telnyx's envelope, as it is read.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read. A body
without one (chunked) is counted as it arrives, and the read that crosses the limit raises
``PayloadTooLarge``: an ``ApiError``, so a route that was reading it answers through the normal
error handler, and a middleware reading it (the journal) lets it rise to here. Either way at most
``limit`` bytes are ever held, and a refused request is not journaled.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0  # the server itself rejects a malformed length before we see it
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
                break
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except PayloadTooLarge:
            if started:  # too late for a 413: let the server drop the connection
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(PayloadTooLarge(self.max_bytes).to_json()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                # The rest of the body is not read: ask the client not to reuse the connection.
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
