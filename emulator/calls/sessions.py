"""What SIP-level and AI commands leave on a call, as plain data: SIP INFO sent, a SIPREC session, an AI
assistant or Conversation Relay conversation, an AI gather in progress, a conversation the leg joined.

``Call`` (``calls/models.py``) holds these; ``calls/actions/sip.py`` and ``calls/actions/ai.py`` change them, and
the control plane shows them (docs/sip.md, docs/ai.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.calls.models import Call


@dataclass(frozen=True, slots=True)
class SipInfo:
    """One SIP INFO that send_sip_info sent to the far end."""

    content_type: str
    body: str
    sent_at: str  # ISO 8601 UTC


@dataclass(frozen=True, slots=True)
class Siprec:
    """siprec_start's session, while the call is recorded to a SIPREC server (SRS) through a connector."""

    connector_name: str | None
    track: str  # inbound_track, outbound_track or both_tracks
    sip_transport: str
    secure: bool
    session_timeout_secs: int
    include_metadata_custom_headers: bool
    started_at: str


@dataclass(slots=True)
class Conversation:
    """An AI assistant (ai_assistant_start) or a Conversation Relay (conversation_relay_start) on the call."""

    kind: str  # "assistant" or "relay"
    conversation_id: str  # for a relay, its conversation_relay_id
    config: dict[str, Any]  # the command's body, without client_state and command_id
    started_at: str
    started_tick: int  # the call's media tick at the start: duration_sec counts from it
    url: str | None = None  # a relay's WebSocket URL (the emulator does not connect to it)
    # The conversation so far: the seeded history, the greeting, messages the app added, the caller's words.
    messages: list[dict[str, Any]] = field(default_factory=list)
    participants: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class AiGather:
    """gather_using_ai in progress: what it asks for, what it has gathered, and the conversation so far."""

    key: str  # unique on the call: stale timeouts of an earlier gather name another key
    conversation_id: str
    parameters: dict[str, Any]  # a JSON Schema object: what to gather
    config: dict[str, Any]  # the command's body, for the models named in call.conversation.ended
    timeout_ms: int  # user_response_timeout_ms: the caller's silence that ends it
    send_partial_results: bool
    send_message_history_updates: bool
    started_tick: int
    result: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)
    awaiting_greeting: bool = False  # the silence is counted from the greeting's end
    turn: int = 0  # bumped by each timer started: only the latest one counts


@dataclass(frozen=True, slots=True)
class JoinedConversation:
    """ai_assistant_join: the conversation this leg joined, as which participant, and the call running it."""

    conversation_id: str
    participant: dict[str, Any]
    owner: Call
