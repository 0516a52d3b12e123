"""The emulator's state as plain data: calls, their streams, and what a stream was asked to do."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class CallState(enum.StrEnum):
    PARKED = "parked"  # an incoming call that rings and waits for `answer`
    BRIDGING = "bridging"  # an outgoing call (dial) that has not been answered yet
    ANSWERED = "answered"
    ENDED = "ended"


class Direction(enum.StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class StreamTrack(enum.StrEnum):
    INBOUND = "inbound_track"
    OUTBOUND = "outbound_track"
    BOTH = "both_tracks"


class StreamState(enum.StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STOPPED = "stopped"  # ended cleanly: scenario over, streaming_stop, hangup or shutdown
    FAILED = "failed"  # never connected, stopped reading, or broke the protocol (streaming.FAILURE_REASONS)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Everything a media stream needs, fixed when the command that starts it is accepted."""

    stream_id: str
    call_control_id: str
    call_leg_id: str
    call_session_id: str
    user_id: str
    from_: str
    to: str
    stream_url: str
    track: StreamTrack
    codec: str  # the codec actually streamed (``default`` already resolved to the call's codec)
    auth_token: str | None = None
    client_state: str | None = None
    custom_parameters: tuple[tuple[str, str], ...] = ()
    bidirectional_mode: str = "mp3"
    bidirectional_codec: str = "PCMU"
    bidirectional_sampling_rate: int = 8000
    bidirectional_target_legs: str = "opposite"
    scenario: str = "default"


@dataclass(slots=True)
class AppAudioCounters:
    """The audio the app sent back on a stream, in chunks and in samples at ``sample_rate`` (its own rate).

    accepted = played + dropped + queued, sample for sample and chunk for chunk; once the stream has
    ended nothing is queued. A chunk counts as played when it played to its end and as dropped when any
    of it was cut, by ``clear`` or by the end of the stream (``unplayed``); the samples of a chunk cut
    halfway are split between played and dropped.
    """

    sample_rate: int | None = None  # None until the stream's session exists (a dial waiting for the answer)
    accepted_chunks: int = 0
    accepted_samples: int = 0
    played_chunks: int = 0
    played_samples: int = 0
    dropped_chunks: int = 0
    dropped_samples: int = 0
    unplayed_chunks: int = 0  # of the dropped: still queued when the stream ended
    unplayed_samples: int = 0

    @property
    def queued_chunks(self) -> int:
        return self.accepted_chunks - self.played_chunks - self.dropped_chunks

    @property
    def queued_samples(self) -> int:
        return self.accepted_samples - self.played_samples - self.dropped_samples


@dataclass(slots=True)
class StreamRecord:
    """What happened to one stream, readable while it runs and after it ends."""

    spec: StreamSpec
    call: Call  # the call it belongs to (so the runtime needs no lookup by id)
    state: StreamState = StreamState.CONNECTING
    # Why the stream ended: completed, stopped, hangup, ... (docs/control-plane.md lists them all).
    end_reason: str | None = None
    error: str | None = None
    frames_sent: int = 0
    media_frames_sent: int = 0
    frames_received: int = 0
    errors_sent: int = 0  # error frames answering bad messages from the app
    close_code: int | None = None
    # Pacing: how late frames left against their absolute schedule, in seconds.
    max_lateness: float = 0.0
    # Set by streaming_stop/hangup at once, so a second stop finds nothing left to stop.
    stop_requested: bool = False
    # ISO 8601 UTC: when the WebSocket opened (connected sent), and when the stream ended.
    started_at: str | None = None
    ended_at: str | None = None
    app_audio: AppAudioCounters = field(default_factory=AppAudioCounters)

    @property
    def is_active(self) -> bool:
        return self.state in (StreamState.CONNECTING, StreamState.STREAMING) and not self.stop_requested


@dataclass(slots=True)
class Call:
    call_control_id: str
    call_leg_id: str
    call_session_id: str
    connection_id: str
    from_: str
    to: str
    direction: Direction
    state: CallState
    client_state: str | None = None
    scenario: str | None = None  # None: the server's default scenario
    # Per-call webhook destination (dial/answer webhook_url); None: the app's default.
    webhook_url: str | None = None
    start_time: str | None = None  # ISO 8601, when answered
    end_time: str | None = None
    # A stream requested on dial, opened when the callee answers.
    pending_stream: StreamRecord | None = None
    streams: dict[str, StreamRecord] = field(default_factory=dict)
    history: list[tuple[float, CallState]] = field(default_factory=list)
    # Created by lenient mode for an id the app made up (not dialed or rung by the emulator).
    made_up: bool = False
    namespace: str = ""  # the API key whose namespace holds this call (never shown: it is a credential)

    @property
    def is_alive(self) -> bool:
        return self.state is not CallState.ENDED

    def active_streams(self) -> list[StreamRecord]:
        return [record for record in self.streams.values() if record.is_active]
