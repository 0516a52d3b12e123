"""The SIP-level and AI state of a call as the control plane shows it (``GET /_emulator/calls/{id}``).

Each key is present on every call, ``null`` (or ``[]``) when the call has none::

    {"sip_info": [{"content_type": "application/json", "body": "{}", "sent_at": "..."}],
     "siprec": {"connector_name": "srs", "track": "both_tracks", ...}, "supervisor_role": "monitor",
     "ai_assistant": {"conversation_id": "...", "messages": [...], ...}, "conversation_relay": null,
     "ai_gather": null, "joined_conversation": null}
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emulator.calls.models import Call
from emulator.calls.sessions import Conversation


def sessions_json(call: Call) -> dict[str, Any]:
    conversation = call.conversation
    gather = call.ai_gather
    joined = call.joined
    return {
        "sip_info": [asdict(info) for info in call.sip_info],
        "siprec": asdict(call.siprec) if call.siprec is not None else None,
        "supervisor_role": call.supervisor_role,
        "ai_assistant": _conversation_json(conversation, "assistant"),
        "conversation_relay": _conversation_json(conversation, "relay"),
        "ai_gather": None
        if gather is None
        else {
            "conversation_id": gather.conversation_id,
            "parameters": gather.parameters,
            "result": gather.result,
            "message_history": gather.history,
            "user_response_timeout_ms": gather.timeout_ms,
        },
        "joined_conversation": None
        if joined is None
        else {
            "conversation_id": joined.conversation_id,
            "participant": joined.participant,
            "call_control_id": joined.owner.call_control_id,  # the call the assistant runs on
        },
    }


def _conversation_json(conversation: Conversation | None, kind: str) -> dict[str, Any] | None:
    if conversation is None or conversation.kind != kind:
        return None
    shown: dict[str, Any] = {
        "conversation_relay_id" if kind == "relay" else "conversation_id": conversation.conversation_id,
        "started_at": conversation.started_at,
        "config": conversation.config,
        "messages": conversation.messages,
    }
    if kind == "relay":
        shown["url"] = conversation.url
    else:
        shown["participants"] = conversation.participants
    return shown


def payment_json(call: Call) -> dict[str, Any] | None:
    """pay's progress while it runs: the step asked now and the attempt (what was keyed is not shown)."""
    payment = call.payment
    if payment is None:
        return None
    step = payment.step if payment.index < len(payment.steps) else "payment-processing"
    return {"payment_method": payment.method, "payment_step": step, "attempt": payment.attempt}
