"""``GET /_emulator/ui``: the dashboard (docs/dashboard.md), a page and its scripts served from the package.

No key is needed to load the files: they hold nothing of any namespace. The page reads the key from the URL
fragment (``#key=...``, which browsers never send) and sends it as a Bearer header with every request it
makes. No build step and no CDN: the files in ``emulator/ui/`` are what the browser runs, and the content
security policy lets the page load nothing from anywhere else.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from importlib import resources
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.errors import NotFound

PREFIX = "/_emulator/ui"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    # Everything from this origin only; blob: for the recordings fetched with the key and played or decoded.
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",  # an upgraded emulator serves its new page at once
    "referrer-policy": "no-referrer",
}


def dashboard_url(base: str, api_keys: Collection[str], environ: Mapping[str, str]) -> str:
    """The link the start-up banner prints, with a key in the fragment: the first configured key, else the key
    an app in this environment would send (TELNYX_API_KEY), else ``emulator`` (as ``telnyx-emulator call``)."""
    key = min(api_keys) if api_keys else environ.get("TELNYX_API_KEY") or "emulator"
    return f"{base}{PREFIX}#key={quote(key, safe='')}"


def _files() -> dict[str, bytes]:
    """The page's files by name, read once: they are part of the installed package."""
    folder = resources.files("emulator.ui")
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _TYPES)
    }


_FILES = _files()


def _serve(name: str) -> Response:
    body = _FILES.get(name)
    if body is None:
        raise NotFound(f"The dashboard has no file {name!r}.")
    suffix = name[name.rfind(".") :]
    return Response(body, media_type=_TYPES[suffix], headers=_HEADERS)


async def page(request: Request) -> Response:
    return _serve("index.html")


async def asset(request: Request) -> Response:
    return _serve(request.path_params["name"])


def dashboard_routes() -> list[Route]:
    return [
        Route(PREFIX, page, methods=["GET"]),
        Route(PREFIX + "/", page, methods=["GET"]),
        Route(PREFIX + "/{name}", asset, methods=["GET"]),
    ]
