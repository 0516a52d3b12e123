"""The REST journal: every request to ``/v2`` of one namespace, as ``GET /_emulator/commands`` shows it.

Pure data: ``recorder.JournalRecorder`` (the ASGI middleware) measures a request and hands the facts
to ``Journal.record``. Secrets never reach the journal: headers are not kept, the values of
``SECRET_FIELDS`` are replaced by ``MASK`` wherever they appear in a body, and so is the API key if a
body happens to contain it. ``redact_url`` is what logs show of a URL.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Body fields whose values are credentials: the stream's shared secret and SIP digest passwords.
SECRET_FIELDS = frozenset({"stream_auth_token", "sip_auth_password"})
# Enough for a long test session; the oldest entries go first so memory stays bounded.
DEFAULT_CAPACITY = 10_000
# A body larger than this is kept as a note, not as text: the journal is for reading, not archiving.
MAX_BODY_BYTES = 64 * 1024
# Secrets shorter than this (test keys like "KEY" or "a") are masked only where a whole value equals
# them: replaced inside text, they would mangle every path and value that happens to contain them.
MIN_EMBEDDED_SECRET = 8


@dataclass(frozen=True, slots=True)
class JournalEntry:
    at: str  # when the request arrived, ISO 8601 UTC
    method: str
    path: str
    query: str
    body: Any  # the parsed JSON body (masked), the raw text if it is not JSON, None if empty
    status: int
    # True when a repeated command_id made the emulator answer without running the command again.
    deduplicated: bool
    duration_ms: float
    errors: list[dict[str, Any]] | None = None  # what a refused request was answered: Telnyx's errors
    fault: str | None = None  # a fault rule answered it (docs/faults.md): which, and what it did

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def call_control_id(self) -> str | None:
        """The call a command was about, from its path (``/v2/calls/{id}/...``); None for dial and the rest."""
        parts = self.path.split("/")
        return parts[3] if len(parts) > 4 and parts[1:3] == ["v2", "calls"] else None


def mask(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """``value`` with every ``SECRET_FIELDS`` value and every occurrence of ``secrets`` replaced by ``MASK``."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_FIELDS else mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(item, secrets) for item in value]
    if isinstance(value, str):
        for secret in secrets:
            if value == secret:
                return MASK
            if len(secret) >= MIN_EMBEDDED_SECRET:
                value = value.replace(secret, MASK)
    return value


def redact_url(url: str) -> str:
    """``url`` as logs show it: user info and query values masked, scheme, host, port and path kept.

    Stream and webhook URLs often carry a per-call secret (``?token=...``, ``user:pass@``); logs are
    copied into CI output and bug reports, so they get the URL's shape, not its credentials. A secret
    in the path cannot be told apart from a route and stays visible (docs/robustness.md).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{name}={MASK}" if sep else MASK for name, sep, _ in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "", ""))


def parse_body(raw: bytes) -> Any:
    """A request body as the journal keeps it: JSON when it parses, else text; None when empty."""
    if not raw.strip():
        return None
    if len(raw) > MAX_BODY_BYTES:
        return f"<{len(raw)} bytes, not kept>"
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or invalid UTF-8), or nested past the parser's depth
        return raw.decode("utf-8", errors="replace")


def response_errors(status: int, raw: bytes) -> list[dict[str, Any]] | None:
    """The ``errors`` of a refused request's answer (Telnyx's envelope), None for a success or another body."""
    if status < 400 or not raw:
        return None
    try:
        errors = json.loads(raw).get("errors")
    except (ValueError, AttributeError, RecursionError):
        return None
    return errors if isinstance(errors, list) else None


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """A refused request's errors on one line, for the log: ``10004 /voice: Missing required parameter``."""
    parts = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        pointer = (error.get("source") or {}).get("pointer") if isinstance(error.get("source"), dict) else None
        where = f" {pointer}" if pointer else ""
        parts.append(f"{error.get('code', '?')}{where}: {error.get('detail') or error.get('title') or ''}")
    return "; ".join(parts)


def _kept_body(raw: bytes, api_key: str) -> Any:
    try:
        return mask(parse_body(raw), (api_key,))
    except RecursionError:  # JSON the parser took but too deep for mask's walk
        return f"<{len(raw)} bytes nested too deeply, not kept>"


class Journal:
    """The latest ``capacity`` requests of one namespace, oldest first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=capacity)

    def record(
        self,
        *,
        at: str,
        method: str,
        path: str,
        query: str,
        raw_body: bytes,
        status: int,
        deduplicated: bool,
        duration_ms: float,
        api_key: str,
        response: bytes = b"",
        fault: str | None = None,
    ) -> JournalEntry:
        entry = JournalEntry(
            at=at,
            method=method,
            path=mask(path, (api_key,)),
            query=mask(query, (api_key,)),
            body=_kept_body(raw_body, api_key),
            status=status,
            deduplicated=deduplicated,
            duration_ms=round(duration_ms, 3),
            errors=mask(response_errors(status, response), (api_key,)),
            fault=fault,
        )
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
