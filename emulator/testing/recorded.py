"""What the fixture's receivers got: webhooks and streams, shared between the server thread and the test."""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ReceivedWebhook:
    """One webhook POST as the built-in receiver got it. Verify it with ``client.webhooks.unwrap(
    hook.text, headers=hook.headers)`` of the official SDK (public key: ``TelnyxEmulator.public_key``)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    @functools.cached_property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_type(self) -> str:
        return str(self.json["data"]["event_type"])

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.json["data"]["payload"]
        return payload

    @property
    def call_control_id(self) -> str | None:
        value = self.payload.get("call_control_id")
        return str(value) if value is not None else None


@dataclass
class RecordedStream:
    """One WebSocket connection the emulator opened to ``stream_url``: every frame, in order."""

    path: str
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    close_code: int | None = None

    def events(self) -> list[str]:
        return [str(m.get("event")) for m in self.messages]

    def frames(self, event: str | None = "media") -> list[dict[str, Any]]:
        return [m for m in self.messages if event is None or m.get("event") == event]

    @property
    def start(self) -> dict[str, Any] | None:
        return next(iter(self.frames("start")), None)

    @property
    def stream_id(self) -> str | None:
        return str(self.start["stream_id"]) if self.start is not None else None

    @property
    def call_control_id(self) -> str | None:
        return str(self.start["start"]["call_control_id"]) if self.start is not None else None

    def audio(self, track: str = "inbound") -> bytes:
        """The decoded payloads of one track's media frames, concatenated (codec bytes, not PCM)."""
        return b"".join(
            base64.b64decode(m["media"]["payload"]) for m in self.frames("media") if m["media"].get("track") == track
        )


class Recorder:
    """What the receivers got, shared between the server thread and the test's thread."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.webhooks: list[ReceivedWebhook] = []
        self.streams: list[RecordedStream] = []

    def add_webhook(self, webhook: ReceivedWebhook) -> None:
        with self.changed:
            self.webhooks.append(webhook)
            self.changed.notify_all()

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
        """The first truthy ``predicate()`` within ``timeout`` seconds, else TimeoutError saying ``describe()``."""
        with self.changed:
            result = self.changed.wait_for(predicate, timeout)
            if not result:
                raise TimeoutError(f"{describe()} within {timeout:g} s")
            return result
