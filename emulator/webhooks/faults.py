"""Webhook faults (docs/faults.md): what the fault rules that fired on one event do to its delivery. Pure.

``NamespacedWebhookSender`` asks the call's namespace which rules fire when an event is queued (so a seeded
run replays: events are queued in the order they happen); the sender (``sender.py``) carries them out:

- ``duplicate``: once delivered, the last attempt's body (same event id, same ``meta``) is POSTed again;
- ``out_of_order``: held back until the call's next event was delivered (``HOLD_S`` at most);
- ``delay``: the delivery starts ``delay_ms`` later, and the call's later events wait behind it;
- ``timeout``, ``bad_signature``, ``stale_timestamp``: the first attempt POSTed is spoiled (its answer is
  counted as a timeout, its signature does not verify, its ``telnyx-timestamp`` is ``STALE_S`` old), so the
  normal retry follows; one of these per event;
- ``failover``: the primary URL is skipped, recorded as a failed attempt, and the failover URL gets the event.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.faults.rules import FaultRule
from emulator.webhooks.envelope import SIGNATURE_HEADER, signed_headers
from emulator.webhooks.signing import SigningKey

SPOILERS = ("timeout", "bad_signature", "stale_timestamp")  # each spoils one attempt: one of them per event
# The official SDKs refuse a telnyx-timestamp more than 5 minutes away from their clock: 10 minutes is refused.
STALE_S = 600
HOLD_S = 1.0  # how long out_of_order holds an event back waiting for the call's next one

_LABELS = {
    "duplicate": "duplicate delivery",
    "out_of_order": "held back, delivered after the call's next event",
    "delay": "delivery delayed {delay_ms} ms",
    "timeout": "answer discarded, counted as a timeout",
    "bad_signature": "signed wrong",
    "stale_timestamp": "telnyx-timestamp 10 minutes old",
    "failover": "primary URL skipped",
}


def describe(rule: FaultRule) -> str:
    """What the rule does to a delivery, in words: ``"delivery delayed 500 ms"``."""
    return _LABELS[rule.kind].format(**rule.params)


def label(rule: FaultRule, note: str | None = None) -> str:
    """What a delivery attempt's ``fault`` says: ``"flt_2: duplicate delivery"``."""
    text = f"{rule.id}: {describe(rule)}"
    return f"{text} ({note})" if note else text


@dataclass(frozen=True, slots=True)
class EventFaults:
    """The webhook fault rules that fired on one event, in the order they were added."""

    rules: tuple[FaultRule, ...]

    @classmethod
    def of(cls, fired: Sequence[FaultRule]) -> EventFaults | None:
        return cls(tuple(fired)) if fired else None

    def first(self, kind: str) -> FaultRule | None:
        return next((rule for rule in self.rules if rule.kind == kind), None)

    @property
    def delays(self) -> tuple[FaultRule, ...]:
        return tuple(rule for rule in self.rules if rule.kind == "delay")

    @property
    def spoiler(self) -> FaultRule | None:
        """The rule that spoils the first attempt POSTed, if any."""
        return next((rule for rule in self.rules if rule.kind in SPOILERS), None)


def fault_headers(key: SigningKey, now: float, body: bytes, spoiler: FaultRule) -> dict[str, str]:
    """The headers of an attempt made at unix time ``now`` that ``spoiler`` spoils. ``timeout`` spoils the
    answer, not the request: its headers are the usual ones."""
    if spoiler.kind == "stale_timestamp":  # signed correctly, over the stale timestamp
        return signed_headers(key, str(int(now) - STALE_S), body)
    headers = signed_headers(key, str(int(now)), body)
    if spoiler.kind == "bad_signature":
        headers[SIGNATURE_HEADER] = spoiled_signature(headers[SIGNATURE_HEADER])
    return headers


def spoiled_signature(signature: str) -> str:
    """A signature of the right form (base64 of 64 bytes) that verifies nothing: its first byte flipped."""
    raw = bytearray(base64.b64decode(signature))
    raw[0] ^= 0xFF
    return base64.b64encode(bytes(raw)).decode("ascii")
