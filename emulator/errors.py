"""Errors, and their rendering as Telnyx's error envelope.

Exception tree::

    EmulatorError
    ├── ApiError(status, problems)         a request the emulator answers with {"errors": [...]}
    │   ├── ValidationFailed               422, one problem per JSON Schema failure
    │   ├── MalformedRequest               400, the body is not JSON
    │   ├── PayloadTooLarge                413, the body is over --max-body-bytes
    │   ├── TooManyStreams                 429 code 10011, --max-streams are running
    │   ├── Unauthorized                   401 code 10009
    │   ├── NotFound / MethodNotAllowed    404 code 10005 / 405
    │   ├── NotEmulated                    501 code 10005, a Telnyx action the emulator does not perform yet
    │   └── CallError                      422 call-state codes: 90015, 90018, 90034, 90048, queues' 90036, 90038
    └── (startup) ConfigError, ScenarioError, SchemaError live beside what they check

Envelope (codes are digit strings; keys without a value are left out, as Telnyx does)::

    {"errors": [{"code": "10032", "title": "Invalid enumerated value",
                 "detail": "The value must be one of: ...", "source": {"pointer": "/stream_track"}}]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of Telnyx's ``errors`` array."""

    code: str  # Telnyx code, a digit string
    title: str
    detail: str
    pointer: str | None  # RFC 6901 pointer into the body, rendered as source.pointer
    doc_url: str | None = None  # rendered as meta.url, as Telnyx links some errors to their documentation


class EmulatorError(Exception):
    """Base of every error the emulator raises on purpose."""


class ApiError(EmulatorError):
    """Answered to the client as ``status`` + Telnyx error envelope."""

    def __init__(self, status: int, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(f"{p.code} {p.title}" for p in problems))
        self.status = status
        self.problems = tuple(problems)
        self.headers: dict[str, str] = {}  # sent with the answer, e.g. a 405's Allow

    def to_json(self) -> dict[str, Any]:
        return {"errors": [problem_json(p) for p in self.problems]}


def problem_json(problem: Problem) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": problem.code, "title": problem.title}
    if problem.detail:
        entry["detail"] = problem.detail
    if problem.pointer is not None:
        entry["source"] = {"pointer": problem.pointer}
    if problem.doc_url is not None:
        entry["meta"] = {"url": problem.doc_url}
    return entry


class ValidationFailed(ApiError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(422, problems)

    @classmethod
    def at(cls, pointer: str, title: str, detail: str, code: str = "10015") -> ValidationFailed:
        """One problem with the field at ``pointer`` (a command's own check, beyond its schema)."""
        return cls([Problem(code, title, detail, pointer)])


class MalformedRequest(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(400, [Problem("10015", "Bad Request", detail, None)])


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        detail = f"The request body is larger than {limit} bytes."
        super().__init__(413, [Problem("10015", "Request body too large", detail, None)])


class TooManyStreams(ApiError):
    """Telnyx's documented 429 code, for the emulator's own capacity limit (--max-streams)."""

    def __init__(self, limit: int) -> None:
        detail = f"The emulator is already running {limit} streams (its --max-streams limit); stop one first."
        super().__init__(429, [Problem("10011", "Too many requests", detail, None)])


class Unauthorized(ApiError):
    def __init__(self) -> None:
        detail = "The required authentication headers were either invalid or not included in the request."
        url = "https://developers.telnyx.com/docs/overview/errors/10009"  # as Telnyx's 401 carries it
        super().__init__(401, [Problem("10009", "Authentication failed", detail, None, url)])


class NotFound(ApiError):
    def __init__(self, detail: str = "The requested resource or URL could not be found.") -> None:
        super().__init__(404, [Problem("10005", "Resource not found", detail, None)])


class NotEmulated(ApiError):
    """A call action Telnyx has and the emulator does not perform (yet): never a silent 200."""

    def __init__(self, action: str) -> None:
        detail = (
            f"Telnyx's '{action}' action is not emulated yet, so nothing was done. "
            "docs/architecture.md says how to add an action."
        )
        super().__init__(501, [Problem("10005", "Action not emulated", detail, None)])


class MethodNotAllowed(ApiError):
    def __init__(self, method: str, allowed: Sequence[str] = ()) -> None:
        detail = f"The {method} method is not allowed for this resource."
        super().__init__(405, [Problem("10005", "Method not allowed", detail, None)])
        if allowed:
            self.headers["Allow"] = ", ".join(allowed)


class CallError(ApiError):
    """A command the call's state does not allow (Telnyx answers these with 422)."""

    def __init__(self, code: str, title: str, detail: str, pointer: str | None = None) -> None:
        super().__init__(422, [Problem(code, title, detail, pointer)])


def invalid_call_control_id(detail: str = "The call_control_id provided was not valid.") -> CallError:
    return CallError("90015", "Invalid Call Control ID", detail, "/call_control_id")


def call_ended() -> CallError:
    return CallError("90018", "Call has already ended", "This call is no longer active and can't receive commands.")


def call_not_answered() -> CallError:
    return CallError(
        "90034",
        "Call has not been answered yet",
        "This call can't receive this command because it has not been answered yet.",
    )


def streaming_not_used() -> CallError:
    return CallError(
        "90048", "Media Streaming is not used.", "This command can only be issued when media streaming is used."
    )


def queue_full(name: str, max_size: int) -> CallError:
    detail = f"The '{name}' queue already holds {max_size} calls (its max_size): no call can join until one leaves."
    return CallError("90036", "Queue full", detail)


def already_in_queue(name: str) -> CallError:
    return CallError("90038", "Call already in queue", f"The call is already waiting in the '{name}' queue.")


def not_in_queue() -> CallError:
    return CallError("10015", "Call not in queue", "The call is not waiting in any queue.")


def queue_not_found(name: str) -> NotFound:
    return NotFound(f"No queue named '{name}'.")


def queue_not_empty(name: str, size: int) -> ApiError:
    detail = f"The '{name}' queue still holds {size} call(s): only an empty queue can be deleted."
    return ApiError(400, [Problem("90050", "Unable to delete queue", detail, None)])


def unsupported_codec(field: str, codec: str, supported: Sequence[str]) -> ValidationFailed:
    detail = f"The emulator does not stream {codec} audio yet; use one of: {', '.join(supported)}."
    return ValidationFailed([Problem("10032", "Codec not supported by the emulator", detail, f"/{field}")])


def internal_error() -> ApiError:
    detail = "The emulator hit an unexpected error; its log has the details."
    return ApiError(500, [Problem("10001", "Internal error", detail, None)])
