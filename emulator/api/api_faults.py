"""REST faults (docs/faults.md): a command answered 5xx or 429 in Telnyx's envelope, answered late, or accepted
with 200 while its effect never happens. Asked once per command, after authentication and before the command
runs; what fired is noted in the namespace's fault log and in the command's journal entry (``fault``)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from emulator.calls.namespaces import Namespace
from emulator.errors import ApiError, Problem
from emulator.faults.rules import FaultBook, FaultRule
from emulator.state import utc_timestamp

# The envelope of each status a rule may answer: Telnyx documents 10011 for 429; for 5xx it documents the
# statuses only, so these codes and titles are the emulator's choice.
STATUS_PROBLEMS = {
    500: ("10001", "Internal error"),
    502: ("10001", "Bad gateway"),
    503: ("10001", "Service unavailable"),
    504: ("10001", "Gateway timeout"),
    429: ("10011", "Too many requests"),
}
ANSWER_ONLY = ("status", "delay")  # dial and retrieve have no effect to leave out: no drop_effect
ANSWERS = ("status", "drop_effect")  # a command is answered one way: the first of these rules to fire


async def inject(request: Request, namespace: Namespace, action: str, call_control_id: str | None) -> bool:
    """Apply the REST faults that fire on this command: wait (delay), answer an error (status: raises it), or
    return True when the command must be answered 200 without running (drop_effect)."""
    book = namespace.faults
    if not book.has("api"):  # no rule: the usual case
        return False
    call = namespace.store.calls.get(call_control_id) if call_control_id is not None else None
    kinds = ANSWER_ONLY if action in ("dial", "retrieve") else None
    scenario = call.scenario if call is not None else None
    fired = book.fire("api", kinds, ANSWERS, call_control_id=call_control_id, action=action, scenario=scenario)
    notes: list[str] = []
    drop = False
    error: tuple[FaultRule, ApiError] | None = None
    for rule in sorted(fired, key=lambda rule: rule.kind != "delay"):  # wait first, then answer
        if rule.kind == "delay":
            await asyncio.sleep(rule.params["delay_ms"] / 1000)
            notes.append(_note(book, rule, call_control_id, f"{action} answered {rule.params['delay_ms']} ms late"))
        elif rule.kind == "status":
            error = rule, _error(rule)
            notes.append(_note(book, rule, call_control_id, f"{action} answered {rule.params['status']}"))
        elif rule.kind == "drop_effect":
            drop = True
            notes.append(_note(book, rule, call_control_id, f"{action} answered 200 and not performed"))
    if notes:
        request.state.fault = "; ".join(notes)  # the journal entry's fault
    if error is not None:
        raise error[1]
    return drop


def _error(rule: FaultRule) -> ApiError:
    status = rule.params["status"]
    code, title = STATUS_PROBLEMS[status]
    detail = rule.params.get("detail") or f"Injected by fault rule {rule.id}."
    error = ApiError(status, [Problem(code, title, detail, None)])
    if status == 429:
        error.headers["Retry-After"] = str(rule.params.get("retry_after", 1))
    return error


def _note(book: FaultBook, rule: FaultRule, call_control_id: str | None, detail: str) -> str:
    book.note(rule, utc_timestamp(), call_control_id, detail)
    return f"{rule.id}: {detail}"
