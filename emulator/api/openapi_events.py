"""The event stream's route in the OpenAPI document (``emulator/api/events.py``; docs/control-plane.md).

Kept apart from ``openapi.py``, as the fault and queue routes are; it passes its operation builder in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# What a reader meets in the stream: one server-sent event per message, its data a JSON object.
EVENT_TYPES = ("call", "webhook", "command", "stream", "fault", "reset", "lost")
_DESCRIPTION = (
    "Server-sent events, endless: `event: <type>`, `id: <n>`, `data: <JSON>` and a blank line per message; "
    "a `: ping` comment after 15 s without one. Types: " + ", ".join(EVENT_TYPES) + " (docs/control-plane.md)."
)


def event_paths(operation: Callable[..., dict[str, Any]], tag: str) -> dict[str, Any]:
    stream = operation(
        "streamEvents",
        "What happens in the namespace, pushed as it happens (server-sent events)",
        tag,
        (200, _DESCRIPTION, {}),
        (),
    )
    stream["responses"]["200"]["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    return {"/_emulator/events": {"get": stream}}
