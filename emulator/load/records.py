"""A load run's record of each call (pure): what the driver knows of it, turned into the JSON of the results
(docs/load.md, "The JSON file") from the emulator's own view of the call (``GET /_emulator/calls/{id}``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The caller hung up for the run, and why: the call rang too long, was up too long, or Ctrl-C stopped the run.
UNANSWERED, CUT, INTERRUPTED = "unanswered", "cut", "interrupted"


@dataclass(slots=True)
class LoadCall:
    """One call of the run, as the driver follows it."""

    index: int
    scenario: str | None  # None: the emulator's default
    from_: str
    created_s: float  # when the run asked for it, in seconds from the run's start
    call_control_id: str | None = None
    state: str = "parked"
    seen_s: float = 0.0  # when the run first saw it in its current state
    hung_up: str | None = None  # UNANSWERED, CUT or INTERRUPTED: the run's caller hung up, for that reason
    record: dict[str, Any] | None = None  # its final record, once it has ended (or could not be made)


def base(call: LoadCall) -> dict[str, Any]:
    """Every field of a record, with what is known before the call's end."""
    return {
        "index": call.index,
        "call_control_id": call.call_control_id,
        "scenario": call.scenario or "default",
        "from": call.from_,
        "created_s": round(call.created_s, 3),
        "answered_s": None,
        "ended_s": None,
        "answer_ms": None,
        "outcome": None,
        "hangup_cause": None,
        "hangup_source": None,
        "errors": {"refused_streams": 0, "webhook_failures": 0, "app_4xx": 0},
        "error": None,
        "metrics": None,
        "frames": 0,
        "late_frames": 0,
        "max_lateness_ms": 0.0,
    }


def not_created(call: LoadCall, why: str) -> dict[str, Any]:
    return {**base(call), "outcome": "not_created", "error": why}


def lost(call: LoadCall) -> dict[str, Any]:
    why = "the emulator no longer keeps this call: more calls ended at once than its history holds (--history)"
    return {**base(call), "outcome": "lost", "error": why}


def unfinished(call: LoadCall) -> dict[str, Any]:
    """A call still up when the run stopped at once (a second Ctrl-C, or the emulator lost)."""
    return {**base(call), "outcome": INTERRUPTED}


def ended(call: LoadCall, data: Mapping[str, Any], wall0: float) -> dict[str, Any]:
    """The record of a call that has ended, from its JSON; ``wall0``: the run's start, in epoch seconds."""
    at = {entry["state"]: _epoch(entry["at"]) for entry in reversed(data["history"])}  # each state's first time
    answered, over, ringing = at.get("answered"), at.get("ended"), at.get("parked", at.get("bridging"))
    streams = data["streams"]
    return {
        **base(call),
        "answered_s": round(answered - wall0, 3) if answered is not None else None,
        "ended_s": round(over - wall0, 3) if over is not None else None,
        "answer_ms": round((answered - ringing) * 1000, 1) if answered is not None and ringing is not None else None,
        "outcome": outcome(call.hung_up, answered is not None, data.get("hangup_cause"), data.get("hangup_source")),
        "hangup_cause": data.get("hangup_cause"),
        "hangup_source": data.get("hangup_source"),
        "errors": {"refused_streams": sum(1 for stream in streams if stream["state"] == "failed"), **traffic(data)},
        "metrics": data.get("metrics") if answered is not None else None,
        "frames": sum(stream["ticks"] for stream in streams),
        "late_frames": sum(stream["late_ticks"] for stream in streams),
        "max_lateness_ms": max((stream["max_lateness_ms"] for stream in streams), default=0.0),
    }


def traffic(data: Mapping[str, Any]) -> dict[str, int]:
    """The app's errors in the call's traffic: webhooks its URL did not take, its commands refused."""
    return {"webhook_failures": data["traffic"]["webhook_failures"], "app_4xx": data["traffic"]["commands_refused"]}


def outcome(hung_up: str | None, answered: bool, cause: str | None, source: str | None) -> str:
    """How the call went. The run's own hangup names it only if the call did end by it (the caller cancelled a
    ringing call, or hung up an answered one): a call that ended by itself meanwhile keeps its own outcome."""
    by_caller = source == "caller" and cause == ("normal_clearing" if answered else "originator_cancel")
    if hung_up is not None and by_caller:
        return INTERRUPTED if hung_up == INTERRUPTED else (CUT if answered else UNANSWERED)
    return "completed" if answered else "rejected"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
