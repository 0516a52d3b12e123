"""What every command may know and the checks they share: ``CommandContext``, ``OK``, the stream limit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.calls.effects import Effect, Outcome, RecordingRequest, StartMedia
from emulator.calls.ids import IdFactory
from emulator.calls.models import Call
from emulator.calls.store import CallStore
from emulator.errors import TooManyStreams
from emulator.scenarios.loader import Callee

OK: dict[str, Any] = {"result": "ok"}


@dataclass(frozen=True, slots=True)
class CommandContext:
    ids: IdFactory
    user_id: str
    call_codec: str  # what `stream_codec: default` resolves to
    scenario: str  # the server's default scenario
    now: float  # monotonic seconds, for the store's bookkeeping
    timestamp: str  # the same moment as ISO 8601 UTC, for payloads
    connection_id: str = "1000000000000000001"  # the emulated Call Control App
    # The --max-streams limit (0: none) and how many streams run now, across every namespace.
    max_streams: int = 0
    running_streams: int = 0
    base_url: str = "http://127.0.0.1:8000"  # where the request came to: URLs the emulator serves start here
    # Who answers a number the emulator dials (transfer's new leg): its scenario (None: the default) and callee.
    # Raises ValidationFailed (pointer /to) for a scenario map entry whose file is gone.
    callee_for: Callable[[str], tuple[str | None, Callee]] = lambda to: (None, Callee())


Command = Callable[[CommandContext, CallStore, Call, Mapping[str, Any]], Outcome]


def require_stream_slot(ctx: CommandContext) -> None:
    """Refuse a new stream when --max-streams are running: checked before anything changes, so a
    refused command leaves no trace (no call created, no client_state noted)."""
    if ctx.max_streams and ctx.running_streams >= ctx.max_streams:
        raise TooManyStreams(ctx.max_streams)


def note_client_state(call: Call, body: Mapping[str, Any]) -> None:
    # Telnyx echoes the client_state of the latest command that set one in later webhooks.
    if body.get("client_state") is not None:
        call.client_state = body["client_state"]


def start_media(call: Call) -> StartMedia:
    """The call's media starts (its caller, its outbound audio): at the answer, or with the first command that
    needs it on a call the app made up (lenient mode). It waits for the streams the call already has, so they
    hear the caller from the first word."""
    call.has_media = True
    return StartMedia(call, tuple(record.spec.stream_id for record in call.active_streams()))


def ensure_media(call: Call) -> tuple[Effect, ...]:
    """A call the app made up (lenient mode) is answered when a command first needs its media: start it now."""
    return () if call.has_media else (start_media(call),)


def clip_key(call: Call, kind: str) -> str:
    """A key for audio the call plays (speak-1, gather-2, ...), unique on the call."""
    call.clips += 1
    return f"{kind}-{call.clips}"


def recording_request(
    ctx: CommandContext,
    call: Call,
    recording_id: str,
    *,
    format: str,
    channels: str,
    track: str,
    play_beep: bool,
    max_length: int,
    file_name: str | None,
) -> RecordingRequest:
    """A recording from now on (record_start, or record-from-answer), its file named after the leg by default."""
    return RecordingRequest(
        recording_id=recording_id,
        format=format,
        channels=channels,
        track=track,
        play_beep=play_beep,
        max_length=max_length,
        file_name=file_name or call.call_leg_id,
        started_at=ctx.timestamp,
        base_url=call.dialed_via or ctx.base_url,  # a dial's answer comes without a request of its own
    )
