"""Feed: what happens in one namespace, as numbered messages for whoever subscribes (``GET /_emulator/events``).

Pure and synchronous, like the store: the shell hands each subscription a ``wake`` callable (an
``asyncio.Event``'s ``set``) and drains it when woken, so publishing never awaits and never blocks. A message
is one server-sent event::

    event: call
    id: 7
    data: {"call_control_id":"v3:...","direction":"incoming","state":"answered",...}

Its ``data`` is encoded once, when published, so every subscriber gets the same bytes and a message says
what was true when it happened, not when it is written. Memory stays bounded: a subscriber that falls more
than ``backlog`` messages behind gets one last ``lost`` message and is dropped (it reconnects and reads the
current state from the control plane). With nobody subscribed, ``publish`` returns at once; callers that
build the data check ``is_watched`` first, so a call changing state pays one attribute read.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Messages a subscriber may fall behind by before it is dropped with ``lost``.
DEFAULT_BACKLOG = 1000


@dataclass(frozen=True, slots=True)
class FeedMessage:
    id: int  # counts per feed, from 1; only messages someone was subscribed to are numbered
    event: str  # call, webhook, command, stream, fault, reset, lost
    data: str  # JSON text on one line (json.dumps escapes newlines)

    def encode(self) -> bytes:
        return f"event: {self.event}\nid: {self.id}\ndata: {self.data}\n\n".encode()


class Subscription:
    """One subscriber's mailbox: the messages it has not taken yet, and why it ended (None while it lasts)."""

    def __init__(self, wake: Callable[[], None], backlog: int) -> None:
        self.wake = wake
        self.backlog = backlog
        self.ended: str | None = None  # lost (fell behind), closed (the emulator stops), gone (the client left)
        self._messages: deque[FeedMessage] = deque()

    @property
    def is_ended(self) -> bool:
        return self.ended is not None

    def take(self) -> list[FeedMessage]:
        """Every message waiting, oldest first; the mailbox is empty afterwards."""
        taken = list(self._messages)
        self._messages.clear()
        return taken

    def _deliver(self, message: FeedMessage) -> bool:
        """Queue ``message``; False when the mailbox is full (the subscriber fell behind)."""
        if len(self._messages) >= self.backlog:
            return False
        self._messages.append(message)
        self.wake()
        return True

    def _end(self, reason: str, last: FeedMessage | None = None) -> None:
        if self.ended is None:
            self.ended = reason
            if last is not None:
                self._messages.append(last)  # past the backlog by one: it says what was lost
            self.wake()


class Feed:
    """The messages of one namespace, fanned out to its subscribers."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self.backlog = backlog  # for subscriptions made from now on
        self.is_closed = False
        self._subscriptions: list[Subscription] = []
        self._last_id = 0

    @property
    def is_watched(self) -> bool:
        return bool(self._subscriptions)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, wake: Callable[[], None]) -> Subscription:
        """A new subscription: it gets every message published from now on. On a closed feed it is ended."""
        subscription = Subscription(wake, self.backlog)
        if self.is_closed:
            subscription._end("closed")
        else:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription, reason: str = "gone") -> None:
        subscription._end(reason)
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, event: str, data: Mapping[str, Any]) -> FeedMessage | None:
        """Send ``data`` as an ``event`` message to every subscriber; None when nobody listens."""
        if not self._subscriptions:
            return None
        self._last_id += 1
        message = FeedMessage(self._last_id, event, json.dumps(data, separators=(",", ":")))
        for subscription in list(self._subscriptions):
            if not subscription._deliver(message):
                self._drop(subscription, message)
        return message

    def _drop(self, subscription: Subscription, missed: FeedMessage) -> None:
        detail = {
            "reason": f"more than {subscription.backlog} messages were waiting to be read",
            "backlog": subscription.backlog,
            "first_missed_id": missed.id,
        }
        self._subscriptions.remove(subscription)
        subscription._end("lost", FeedMessage(missed.id, "lost", json.dumps(detail, separators=(",", ":"))))

    def close(self) -> None:
        """End every subscription, and any made later: the emulator is stopping."""
        self.is_closed = True
        for subscription in self._subscriptions:
            subscription._end("closed")
        self._subscriptions.clear()
