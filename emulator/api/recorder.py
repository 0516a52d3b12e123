"""What the control plane records per namespace: REST requests and the webhooks sent about its calls.

``JournalRecorder`` is ASGI middleware that writes every ``/v2`` request into its namespace's journal.
It sits inside ``BearerAuth``, so every request it sees has an API key (a request rejected with 401
belongs to no namespace and is not journaled). The body is read once here and replayed to the app, so
the journal holds it even when the app never reads it (an unknown route, say). A route marks a
request answered from the command_id memory by setting ``request.state.deduplicated``.

``NamespacedWebhookSender`` records each delivery attempt in the namespace of the call the event is
about; ``GET /_emulator/webhooks`` shows a namespace its own attempts. It also asks that namespace's webhook
fault rules about each event it queues, and notes the faults injected in the namespace's fault log.

Both also publish what they record on the namespace's event feed (``GET /_emulator/events``) while someone reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.calls.journal import describe_errors
from emulator.calls.models import Call
from emulator.calls.namespaces import Namespace, Namespaces
from emulator.faults.rules import FaultRule
from emulator.state import utc_timestamp
from emulator.webhooks.faults import SPOILERS, EventFaults
from emulator.webhooks.sender import DeliveryAttempt, WebhookSender, WebhookTarget

log = logging.getLogger(__name__)

API_PREFIX = "/v2"
_MAX_ANSWER = 64 * 1024  # of a refused request's answer, kept to read its errors


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


class JournalRecorder:
    def __init__(self, app: ASGIApp, namespaces: Namespaces) -> None:
        self.app = app
        self.namespaces = namespaces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api_key = scope.get("state", {}).get("api_key")
        if scope["type"] != "http" or api_key is None or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        at = utc_timestamp()
        started = time.perf_counter()
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see the same when it reads
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        status = 500  # what the server answers if the app raises before responding
        answer: list[bytes] = []  # a refused request's answer: its errors are journaled and logged

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400 and sum(map(len, answer)) < _MAX_ANSWER:
                answer.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            namespace = self.namespaces.get(api_key)
            entry = namespace.journal.record(
                at=at,
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                raw_body=raw,
                status=status,
                deduplicated=bool(scope.get("state", {}).get("deduplicated", False)),
                duration_ms=(time.perf_counter() - started) * 1000,
                api_key=api_key,
                response=b"".join(answer),
                fault=scope.get("state", {}).get("fault"),
            )
            if namespace.feed.is_watched:
                namespace.feed.publish("command", entry.to_json())
            call = namespace.store.calls.get(entry.call_control_id or "")
            if call is not None:
                call.traffic.commands += 1
                call.traffic.commands_refused += 400 <= status < 500
            if 400 <= status < 500:  # why it was refused, where a person looks first
                why = describe_errors(entry.errors) if entry.errors else "no Telnyx errors in the answer"
                log.info("%s %s -> %d: %s", entry.method, entry.path, status, why)


class NamespacedWebhookSender(WebhookSender):
    """A ``WebhookSender`` that records each attempt in the namespace of the call its event is about.

    ``owner`` (given to ``send``) is the ``Call`` itself, and its namespace is the one whose store holds
    that very object: attribution is by object, not by id, so a key that names another key's made-up
    id gets events in its own log only, and a call forgotten by a reset no longer has a namespace.
    """

    def __init__(self, *args: Any, namespaces: Namespaces, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.namespaces = namespaces

    def send(
        self,
        call_control_id: str,
        target: WebhookTarget | None,
        event: Mapping[str, Any],
        owner: object = None,
        faults: EventFaults | None = None,
    ) -> None:
        namespace = self.namespaces.find(owner.namespace) if isinstance(owner, Call) else None
        if namespace is not None and namespace.store.calls.get(call_control_id) is not owner:
            namespace = None  # forgotten (reset, history): its events are nobody's
        # The epoch too: an event queued before a reset is no longer the namespace's when it is attempted.
        tag = (namespace, namespace.epoch, owner) if namespace else None
        if namespace is not None and target is not None and namespace.faults.has("webhooks"):  # the usual: none
            assert isinstance(owner, Call)
            event_type = str(event.get("event_type", ""))
            fired = namespace.faults.fire(
                "webhooks",
                None,
                SPOILERS,
                call_control_id=call_control_id,
                event_type=event_type,
                scenario=owner.scenario,
            )
            faults = EventFaults.of(fired) or faults
        super().send(call_control_id, target, event, tag, faults)

    def _inject(self, owner: object, rule: FaultRule, call_control_id: str, detail: str) -> None:
        super()._inject(owner, rule, call_control_id, detail)
        if isinstance(owner, tuple):
            namespace: Namespace = owner[0]
            if namespace.epoch == owner[1]:  # a reset forgets the faults injected before it
                namespace.faults.note(rule, utc_timestamp(), call_control_id, detail)

    def record_request(self, call: Call, attempt: DeliveryAttempt) -> None:
        """A request the emulator made to the app about ``call`` other than a webhook (a TeXML document fetch or
        callback: emulator/texml_session.py), logged as the call's webhooks are."""
        namespace = self.namespaces.find(call.namespace)
        if namespace is not None and namespace.store.calls.get(call.call_control_id) is call:
            self._record(attempt, (namespace, namespace.epoch, call))

    def _record(self, attempt: DeliveryAttempt, owner: object) -> None:
        super()._record(attempt, owner)
        if isinstance(owner, tuple):
            namespace, epoch, call = owner
            if namespace.epoch == epoch:
                namespace.webhook_attempts.append(attempt)
                if namespace.feed.is_watched:
                    namespace.feed.publish("webhook", attempt.as_json())
                if not attempt.skipped:
                    call.traffic.webhook_attempts += 1
                    call.traffic.webhook_failures += not attempt.ok
