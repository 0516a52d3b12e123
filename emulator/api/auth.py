"""Bearer-token authentication as a pure ASGI middleware (cheaper than BaseHTTPMiddleware)."""

from __future__ import annotations

import json
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.errors import Unauthorized


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class BearerAuth:
    """Rejects HTTP requests without an acceptable Bearer token with Telnyx's 401 envelope.

    With no ``api_keys`` every non-empty token is accepted, as a sandbox would; otherwise only
    the listed keys. ``public_paths`` are served without a token (and without a namespace), and so is every
    path under one of ``public_prefixes``.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Collection[str] = (),
        public_paths: Collection[str] = (),
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.api_keys = frozenset(api_keys)
        self.public_paths = frozenset(public_paths)
        self.public_prefixes = public_prefixes
        error = Unauthorized()
        self._body = json.dumps(error.to_json()).encode()
        self._status = error.status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        is_public = path in self.public_paths or bool(self.public_prefixes and path.startswith(self.public_prefixes))
        if scope["type"] != "http" or is_public:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        token = bearer_token(header)
        if token is not None and (not self.api_keys or token in self.api_keys):
            scope.setdefault("state", {})["api_key"] = token
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": self._status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})
