"""The webhook envelope Telnyx POSTs (pure): the event, the body, the signed headers; and the record of an attempt.

``WebhookSender`` (``sender.py``) delivers them; these builders and records do no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from emulator.webhooks.signing import SigningKey

USER_AGENT = "telnyx-webhooks"
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"


# -- builders ---------------------------------------------------------------------------------


def format_time(moment: datetime) -> str:
    """``2021-12-15T14:06:32.059436Z``: UTC, microseconds, ``Z``. ``moment`` must be timezone-aware."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_event(event_type: str, payload: Mapping[str, Any], *, event_id: str, occurred_at: datetime) -> dict[str, Any]:
    """The ``data`` object of a webhook: ``{"record_type": "event", "event_type", "id", "occurred_at", "payload"}``."""
    return {
        "record_type": "event",
        "event_type": event_type,
        "id": event_id,
        "occurred_at": format_time(occurred_at),
        "payload": dict(payload),
    }


def render_body(event: Mapping[str, Any], *, attempt: int, delivered_to: str) -> bytes:
    """The POST body: ``{"data": event, "meta": {"attempt", "delivered_to"}}``, compact JSON in UTF-8."""
    document = {"data": event, "meta": {"attempt": attempt, "delivered_to": delivered_to}}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_headers(key: SigningKey, timestamp: str, body: bytes) -> dict[str, str]:
    """Every header Telnyx sends with a webhook, the signature computed over exactly ``body``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: key.sign(timestamp, body),
        TIMESTAMP_HEADER: timestamp,
    }


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a call's webhooks go: the primary URL and, when it gives up, an optional failover URL."""

    url: str
    failover_url: str | None = None


@dataclass(slots=True)
class DeliveryAttempt:
    """One POST (or one skipped event: ``skipped`` true, ``attempt`` 0, no URL)."""

    event_id: str
    event_type: str
    call_control_id: str
    url: str
    attempt: int  # 1-based, counted across the primary and failover URLs
    is_failover: bool
    status: int | None  # None when no response came (timeout, connection error)
    latency_ms: float
    error: str | None
    at: str  # when the attempt started, ISO 8601 UTC
    ok: bool
    skipped: bool = False
    fault: str | None = None  # what a fault rule did to this attempt: "flt_2: duplicate delivery"
    # What was POSTed: the exact body, and the signature headers as sent (a fault may have spoiled them). Kept
    # as bytes, parsed only when someone reads the log: most attempts are never read.
    body: bytes | None = field(default=None, repr=False)
    signature: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        """The attempt as the control plane lists it (``GET /_emulator/webhooks``): ``payload`` is the body
        parsed (the event itself, for a skipped one), ``signature`` the ``telnyx-signature-ed25519`` and
        ``telnyx-timestamp`` headers sent (``null`` when nothing was sent)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "call_control_id": self.call_control_id,
            "url": self.url,
            "attempt": self.attempt,
            "is_failover": self.is_failover,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "at": self.at,
            "ok": self.ok,
            "skipped": self.skipped,
            "fault": self.fault,
            "payload": _parsed(self.body),
            "signature": self.signature,
        }


def _parsed(body: bytes | None) -> Any:
    """A body as the log shows it: JSON (a webhook), or a form's fields (a TeXML request), or None."""
    if body is None:
        return None
    if body.startswith(b"{"):
        return json.loads(body)
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def sent_signature(headers: Mapping[str, str]) -> dict[str, str]:
    """The signature headers among ``headers``, as the log keeps them."""
    return {name: headers[name] for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER) if name in headers}
