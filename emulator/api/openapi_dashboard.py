"""The dashboard's routes in the OpenAPI document (``api/dashboard.py``, ``api/levels.py``; docs/dashboard.md).

Kept apart from ``openapi.py``, as the event stream's and the fault routes are; it passes its builders in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LEVELS = (
    "Server-sent events until the call ends: `event: level` with `data: {stream_id, from_ms, inbound, outbound}` "
    "(the peak of each 20 ms frame sent on each track since the last, 0 to 1), every 100 ms while frames are "
    "sent; a new reader gets the latest 10 s first. Then `event: end` with `data: {call_control_id}`."
)
_MARKER = {
    "type": "object",
    "properties": {
        "stream_id": {"type": "string"},
        "caller": {
            "type": ["array", "null"],
            "description": "the caller's steps; null once the stream's recording is no longer kept",
            "items": {
                "type": "object",
                "properties": {"at_ms": {"type": "integer"}, "label": {"type": "string"}},
                "required": ["at_ms", "label"],
            },
        },
        "app": {
            "type": "array",
            "description": "the app's mark and clear messages, as they arrived",
            "items": {
                "type": "object",
                "properties": {
                    "at_ms": {"type": "integer"},
                    "kind": {"enum": ["mark", "clear"]},
                    "name": {"type": "string"},
                },
                "required": ["at_ms", "kind", "name"],
            },
        },
    },
    "required": ["stream_id", "caller", "app"],
}


def dashboard_paths(
    operation: Callable[..., dict[str, Any]],
    public: Callable[[dict[str, Any]], dict[str, Any]],
    tag: str,
    call_id: dict[str, Any],
    stream_id: dict[str, Any],
) -> dict[str, Any]:
    levels = operation(
        "streamCallLevels", "A call's audio levels, live (server-sent events)", tag, (200, _LEVELS, {}), (404,),
        parameters=[call_id],
    )  # fmt: skip
    levels["responses"]["200"]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    markers = operation(
        "getStreamMarkers",
        "What the caller did and when the app sent mark and clear, in ms of the stream's media",
        tag,
        (200, "The markers", {"type": "object", "properties": {"data": _MARKER}, "required": ["data"]}),
        (404,),
        parameters=[stream_id],
    )
    page = public(operation("dashboard", "The dashboard (no key needed to load it)", tag, (200, "HTML", {}), ()))
    page["responses"]["200"]["content"] = {"text/html": {"schema": {"type": "string"}}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    asset = public(
        operation(
            "dashboardFile", "One of the dashboard's files", tag, (200, "The file", {}), (404,), parameters=[name]
        )
    )
    asset["responses"]["200"]["content"] = {"*/*": {"schema": {"type": "string"}}}
    return {
        "/_emulator/calls/{call_control_id}/levels": {"get": levels},
        "/_emulator/streams/{stream_id}/markers": {"get": markers},
        "/_emulator/ui": {"get": page},
        "/_emulator/ui/": {"get": {**page, "operationId": "dashboardSlash"}},
        "/_emulator/ui/{name}": {"get": asset},
    }
