"""``GET /``: what answers on this port, for a person who opens it in a browser. No key needed."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from emulator import __version__

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>telnyx-emulator</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}}
code{{background:#f2f2f2;padding:0 .2em}}</style></head>
<body>
<h1>telnyx-emulator {version}</h1>
<p>A local emulator of Telnyx Call Control: point an app (or the official SDKs) at
<code>{base}/v2</code> instead of <code>https://api.telnyx.com/v2</code>, with any Bearer key unless the
emulator was started with <code>--api-key</code>. An app that hard-codes api.telnyx.com can use this port as
its HTTPS proxy (<code>HTTPS_PROXY={base}</code>, docs/zero-code.md).</p>
<ul>
<li><a href="/_emulator/ui">/_emulator/ui</a>: the dashboard: calls live, each call's timeline and audio, and a
console to act as the caller (it asks for the key your app uses; the start-up banner prints a link with it)</li>
<li><a href="/openapi.json">/openapi.json</a>: the OpenAPI document of everything served here</li>
<li><code>/_emulator/...</code>: the control plane (Bearer key): ring the app (<code>POST /_emulator/calls</code>),
list calls, streams, webhook deliveries and the command journal, reset</li>
<li><a href="/_emulator/health">/_emulator/health</a>: is it up (no key)</li>
</ul>
<p>The guides are the project's <code>README.md</code> and <code>docs/</code>; <code>telnyx-emulator --help</code>
lists every setting.</p>
</body></html>
"""


async def landing(request: Request) -> Response:
    host = request.headers.get("host") or "127.0.0.1:8000"
    base = html.escape(f"{request.url.scheme}://{host}")
    return HTMLResponse(_PAGE.format(version=html.escape(__version__), base=base))


def landing_routes() -> list[Route]:
    return [Route("/", landing, methods=["GET"])]
