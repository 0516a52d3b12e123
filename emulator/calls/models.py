"""The emulator's state as plain data: calls, their streams, and what a stream was asked to do."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from emulator.calls.payments import Payment
from emulator.calls.sessions import AiGather, Conversation, JoinedConversation, SipInfo, Siprec
from emulator.media.conversation import ConversationMeter

if TYPE_CHECKING:  # a seat points back at its call
    from collections.abc import Callable

    from emulator.calls.queues import QueuedCall


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


class StreamEndReason(enum.StrEnum):
    """Why a stream ended (the control plane's ``end_reason``; docs/control-plane.md)."""

    COMPLETED = "completed"  # the caller's script ran out and the caller hung up
    HANGUP = "hangup"  # the call ended: hung up by the app or by the caller's hangup step
    SCRIPT_FAILED = "script_failed"  # a wait_for with on_timeout: fail timed out
    STOPPED = "stopped"  # streaming_stop
    RESET = "reset"  # POST /_emulator/reset
    SHUTDOWN = "shutdown"  # the emulator is shutting down
    MAX_DURATION = "max_duration"  # --stream-max-duration passed
    CONNECTION_FAILED = "connection_failed"  # the WebSocket never opened
    SEND_TIMEOUT = "send_timeout"  # the target stopped reading
    TARGET_ERROR = "target_error"  # the emulator closed the connection because of what the target sent
    DISCONNECTED = "disconnected"  # the target closed or dropped the connection
    MEDIA_WORKER_LOST = "media_worker_lost"  # the media worker holding the connection exited (docs/scaling.md)


# A stream that never opened, whose target stopped reading, that the emulator had to close because of what
# the target sent, or whose media worker died, failed (streaming.failed); every other end is a stop.
FAILURE_REASONS = frozenset(
    {
        StreamEndReason.CONNECTION_FAILED,
        StreamEndReason.SEND_TIMEOUT,
        StreamEndReason.TARGET_ERROR,
        StreamEndReason.MEDIA_WORKER_LOST,
    }
)


class StreamState(enum.StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STOPPED = "stopped"  # ended cleanly: scenario over, streaming_stop, hangup or shutdown
    FAILED = "failed"  # never connected, stopped reading, or broke the protocol (FAILURE_REASONS)


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


# How many marks and clears of the app a stream keeps with their tick (StreamRecord.app_controls).
APP_CONTROLS_KEPT = 1000


class TexmlRunner(Protocol):
    """What the call model knows of a TeXML call's runner: it takes the call's events, and says how it goes."""

    def on_event(self, event_type: str, payload: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...  # the call is forgotten (reset) or the emulator stops

    def as_json(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class StreamRecord:
    """What happened to one stream, readable while it runs and after it ends."""

    spec: StreamSpec
    call: Call  # the call it belongs to (so the runtime needs no lookup by id)
    state: StreamState = StreamState.CONNECTING
    # Why the stream ended: completed, stopped, hangup, ... (docs/control-plane.md lists them all).
    end_reason: StreamEndReason | None = None
    error: str | None = None
    frames_sent: int = 0
    media_frames_sent: int = 0
    frames_received: int = 0
    errors_sent: int = 0  # error frames answering bad messages from the app
    close_code: int | None = None
    # Pacing: how late frames left against their absolute schedule, in seconds; how many ticks left a whole
    # frame (LATE_TICK_S) or more late (the emulator could not keep pace: ``telnyx-emulator load`` reports it).
    max_lateness: float = 0.0
    ticks: int = 0
    late_ticks: int = 0
    # Set by streaming_stop/hangup at once, so a second stop finds nothing left to stop.
    stop_requested: bool = False
    # ISO 8601 UTC: when the WebSocket opened (connected sent), and when the stream ended.
    started_at: str | None = None
    ended_at: str | None = None
    app_audio: AppAudioCounters = field(default_factory=AppAudioCounters)
    faults: dict[str, int] = field(default_factory=dict)  # media faults injected (docs/faults.md), by kind
    # The app's marks and clears as they arrived, with the stream's tick then: (tick, "mark" or "clear", name).
    # The dashboard marks them on the recording. Only the first APP_CONTROLS_KEPT, so a stream stays bounded.
    app_controls: list[tuple[int, str, str]] = field(default_factory=list)

    def note_app_control(self, kind: str, name: str = "") -> None:
        if len(self.app_controls) < APP_CONTROLS_KEPT:
            self.app_controls.append((self.ticks, kind, name))

    @property
    def is_active(self) -> bool:
        return self.state in (StreamState.CONNECTING, StreamState.STREAMING) and not self.stop_requested


@dataclass(frozen=True, slots=True)
class Transcription:
    """transcription_start's settings, while the call is transcribed (``call.transcription`` webhooks)."""

    tracks: str = "inbound"  # inbound: what the far end says; outbound: what the call plays to it; both
    engine: str = "Google"
    interim_results: bool = False
    language: str | None = None

    def hears(self, track: str) -> bool:
        return self.tracks in (track, "both")


@dataclass(frozen=True, slots=True)
class Fork:
    """fork_start's targets, while the call's audio is forked as RTP: (ip, port) or None for each direction."""

    key: str
    rx: tuple[str, int] | None
    tx: tuple[str, int] | None
    stream_type: str = "decrypted"


class Unbridge(enum.StrEnum):
    """What a leg does when its bridge ends (the other leg hung up or was transferred away)."""

    HANGUP = "hangup"  # Telnyx's default: it hangs up too
    PARK = "park"  # park_after_unbridge: self: it stays up, parked, for the app's next command
    HOLD = "hold"  # hold_after_unbridge: true: it stays up, on hold


@dataclass(slots=True)
class CallTraffic:
    """How the app handled the call's traffic: its commands the emulator refused (4xx), its webhooks its URL
    did not take (no 2xx answer, or none at all). Counted whatever the journal and webhook log still keep."""

    commands: int = 0
    commands_refused: int = 0
    webhook_attempts: int = 0
    webhook_failures: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "commands": self.commands,
            "commands_refused": self.commands_refused,
            "webhook_attempts": self.webhook_attempts,
            "webhook_failures": self.webhook_failures,
        }


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
    has_media: bool = False  # its media (the caller, the outbound audio) has started: at the answer
    media_ticks: int = 0  # 20 ms ticks of its media so far (kept by the call's runner): RTP packet counts
    clips: int = 0  # audio the app asked the call to play (speak, send_dtmf, ...): numbers their keys
    noise_suppression: str | None = None  # suppression_start's direction, until suppression_stop
    recordings: list[str] = field(default_factory=list)  # ids of record_start's recordings still running
    transcription: Transcription | None = None  # transcription_start's, until transcription_stop or the end
    fork: Fork | None = None  # fork_start's, until fork_stop or the end
    # A dialed call's options for the moment the callee answers (dial's body: record, transcription,
    # audio_url, send_digits_on_answer, time_limit_secs, answering_machine_detection), and the recording_id
    # dial's response announced for record-from-answer.
    answer_options: dict[str, Any] | None = None
    answer_recording_id: str | None = None
    dialed_via: str | None = None  # the base URL dial came to: the URLs of what happens at the answer use it
    namespace: str = ""  # the API key whose namespace holds this call (never shown: it is a credential)
    # Two legs (calls/actions/bridging.py). Other calls are held by reference, kept out of eq and repr: two
    # bridged calls point at each other.
    bridged_to: Call | None = field(default=None, compare=False, repr=False)  # the leg it hears and is heard by
    unbridge: Unbridge = Unbridge.HANGUP  # what it does when that bridge ends
    # A leg that is bridged to ``bridge_on_answer`` once it answers (transfer's new leg; dial's bridge_on_answer).
    bridge_on_answer: Call | None = field(default=None, compare=False, repr=False)
    transferring: Call | None = field(default=None, compare=False, repr=False)  # transfer's leg, while it rings
    prevent_double_bridge: bool = False  # dial's: hang up at the answer if bridge_on_answer's call is bridged
    # dial's supervise_call_control_id: the call this one supervises once answered (its role: ``supervisor_role``
    # below); from the answer, the legs it hears (the supervised call and the leg bridged to it).
    supervising: Call | None = field(default=None, compare=False, repr=False)
    supervised: tuple[Call, ...] = field(default=(), compare=False, repr=False)
    supervisors: list[Call] = field(default_factory=list, compare=False, repr=False)  # those that hear it now
    bridges: int = 0  # bridges so far (the control plane's history)
    # Its seat while it waits in a queue (enqueue; calls/queues.py), until it leaves or is taken by a bridge.
    queued: QueuedCall | None = field(default=None, compare=False, repr=False)
    # SIP-level and AI commands (calls/sessions.py; docs/sip.md, docs/ai.md), shown by the control plane.
    sip_info: list[SipInfo] = field(default_factory=list)  # send_sip_info's, oldest first
    siprec: Siprec | None = None  # siprec_start's session, until siprec_stop, its failure or the end
    supervisor_role: str | None = None  # switch_supervisor_role's: barge, whisper or monitor
    conversation: Conversation | None = None  # an AI assistant or Conversation Relay, until stopped or the end
    ai_gather: AiGather | None = None  # gather_using_ai's, until it ends
    payment: Payment | None = None  # pay's, while it collects and processes (calls/payments.py)
    meter: ConversationMeter | None = None  # its media's conversation metrics, from the answer on (and after)
    traffic: CallTraffic = field(default_factory=lambda: CallTraffic())  # how the app's side of it went
    hangup_cause: str | None = None  # why it ended, as its call.hangup said (None while it lives)
    hangup_source: str | None = None
    joined: JoinedConversation | None = field(default=None, compare=False, repr=False)  # ai_assistant_join's
    # Told when the call is created and at each state change (store.transition): its namespace's event feed.
    observer: Callable[[Call], None] | None = field(default=None, compare=False, repr=False)
    # A TeXML call's document runner (emulator/texml_session.py): it takes the call's events, which drive the
    # document, instead of the app's webhook URL (a TeXML app gets TeXML's requests, not Call Control webhooks).
    texml: TexmlRunner | None = field(default=None, compare=False, repr=False)

    @property
    def is_alive(self) -> bool:
        return self.state is not CallState.ENDED

    def active_streams(self) -> list[StreamRecord]:
        return [record for record in self.streams.values() if record.is_active]
