"""The emulator's port is also an HTTP proxy for ``api.telnyx.com``: unmodified apps reach it with
``HTTPS_PROXY=http://127.0.0.1:8000`` and the local CA trusted (docs/zero-code.md).

Two ways in, both on the one port uvicorn serves:

- ``CONNECT api.telnyx.com:443``: the connection answers ``200 Connection established``, then TLS is
  terminated with the local CA's certificate for api.telnyx.com (``emulator/local_ca.py``) and the same
  Starlette app is served inside the tunnel, as on the plain port. Any other host is refused (403) and
  closed: nothing is ever forwarded to the internet.
- an absolute-form request (``POST https://api.telnyx.com/v2/calls HTTP/1.1``, what axios sends to a proxy):
  served as the same request for its path. ``ProxyGuard`` refuses one for any other host.

uvicorn takes the HTTP protocol class as ``Config(http=...)``; ``proxy_protocol(tls)`` subclasses its
httptools protocol. A CONNECT is recognised from the first bytes of a connection, before the HTTP parser
sees them, so the parser never meets the tunnel's TLS bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Any

import httptools
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from emulator.local_ca import TELNYX_API_HOST

log = logging.getLogger(__name__)

EXTENSION = "telnyx_emulator.proxied_host"  # scope["extensions"] key: the host of an absolute-form request
_CONNECT = b"CONNECT "
_MAX_CONNECT_HEAD = 8192
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def refusal(host: str) -> str:
    return (
        f"telnyx-emulator stands in for {TELNYX_API_HOST} only: it does not forward requests to {host}. "
        "Leave other hosts out of the proxy (NO_PROXY) or send them elsewhere."
    )


def proxy_protocol(tls: ssl.SSLContext) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, also answering CONNECT api.telnyx.com:443 with a TLS tunnel served by
    the app, and marking absolute-form requests with their host."""

    class ProxyHttpProtocol(HttpToolsProtocol):
        _head: bytes | None = b""  # the connection's first bytes while they may be a CONNECT; None after
        _early: bytes = b""  # inside a tunnel: the request TLS decrypted before connection_made was called

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            if self._early:
                data, self._early = self._early, b""
                self.data_received(data)

        def data_received(self, data: bytes) -> None:
            if self.transport is None:
                # start_tls hands the decrypted request to this protocol as soon as the handshake is over,
                # before it returns and the tunnel calls connection_made: keep it until then.
                self._early += data
                return
            if self._head is None:
                super().data_received(data)
                return
            head = self._head + data
            if not (head.startswith(_CONNECT) or _CONNECT.startswith(head)):
                self._head = None  # an ordinary request
                super().data_received(head)
                return
            end = head.find(b"\r\n\r\n")
            if end < 0:
                if len(head) > _MAX_CONNECT_HEAD:
                    self._reply(400, "The CONNECT request's head is too long.")
                else:
                    self._head = head
                return
            self._head = None
            self._connect(head[:end], head[end + 4 :])

        def on_headers_complete(self) -> None:
            if self.url[:8].lower().startswith((b"http://", b"https://")):  # absolute form: through a proxy
                parsed = httptools.parse_url(self.url)
                host = parsed.host.decode("ascii", "replace").lower().strip("[]")
                port = parsed.port or (443 if self.url[:5].lower() == b"https" else 80)
                extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
                extensions[EXTENSION] = (host, port)
            super().on_headers_complete()

        def _connect(self, head: bytes, rest: bytes) -> None:
            target = head.split(b"\r\n", 1)[0].split(b" ")
            authority = target[1].decode("ascii", "replace") if len(target) == 3 else ""
            host, _, port = authority.rpartition(":")
            host = host.lower().strip("[]")
            if host != TELNYX_API_HOST or port != "443":
                log.info("proxy: refused CONNECT %s (only %s:443 is served)", authority or "?", TELNYX_API_HOST)
                self._reply(403, refusal(authority or "an unreadable target"))
                return
            if rest:  # TLS bytes before our answer: a client that does not wait for it
                self._reply(400, "Send the TLS handshake after the proxy's 200 answer.")
                return
            self.transport.pause_reading()  # the client's ClientHello must reach TLS, not this parser
            self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.connections.discard(self)  # the tunnel's own protocol takes the connection over
            task = self.loop.create_task(self._tunnel())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        async def _tunnel(self) -> None:
            inner = type(self)(self.config, self.server_state, self.app_state, self.loop)
            inner._head = None  # no proxying inside the tunnel
            try:
                transport = await self.loop.start_tls(self.transport, inner, tls, server_side=True)
            except (OSError, ssl.SSLError, ConnectionError) as exc:
                log.info("proxy: TLS handshake with the client failed: %s (does it trust the emulator's CA?)", exc)
                self.transport.close()
                return
            if transport is None:  # the connection closed during the handshake
                return
            inner.connection_made(transport)

        def _reply(self, status: int, message: str) -> None:
            body = message.encode()
            reason = {400: "Bad Request", 403: "Forbidden"}[status]
            self.transport.write(
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            self.transport.close()

    return ProxyHttpProtocol


class ProxyGuard:
    """Refuses absolute-form requests for any host but api.telnyx.com and the emulator itself: 403, in
    Telnyx's error envelope, never forwarded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxied: tuple[str, int] | None = (
            scope.get("extensions", {}).get(EXTENSION) if scope["type"] == "http" else None
        )
        if proxied is None or _served(proxied, scope):
            await self.app(scope, receive, send)
            return
        host, port = proxied
        log.info("proxy: refused %s %s:%d (only %s is served)", scope["method"], host, port, TELNYX_API_HOST)
        error: dict[str, Any] = {"code": "10015", "title": "Host not emulated", "detail": refusal(host)}
        body = json.dumps({"errors": [error]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _served(proxied: tuple[str, int], scope: Scope) -> bool:
    host, port = proxied
    if host == TELNYX_API_HOST:
        return True
    server = scope.get("server")
    return host in LOCAL_HOSTS and server is not None and server[1] == port  # the emulator's own address
