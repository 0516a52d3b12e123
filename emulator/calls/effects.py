"""Effects: what a command or a media event asks the runtime to do. Plain data; only ``runtime`` acts on them.

Every webhook leaves through ``Emit``; every stream and every call's media starts and stops through one of
these. ``Runtime.apply`` interprets them exhaustively (``match`` + ``assert_never``), one handler each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.calls.models import Call, Fork, StreamEndReason, StreamRecord
from emulator.media.gather import GatherRules
from emulator.scenarios.loader import Callee


@dataclass(frozen=True, slots=True)
class StartStream:
    record: StreamRecord


@dataclass(frozen=True, slots=True)
class StopStreams:
    records: tuple[StreamRecord, ...]
    reason: StreamEndReason


@dataclass(frozen=True, slots=True)
class Emit:
    """Send a webhook about ``call``."""

    call: Call
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ring:
    """A dialed call rings; after ``callee.ring_ms`` the callee does what ``callee.outcome`` says."""

    call: Call
    callee: Callee
    timeout_secs: int


@dataclass(frozen=True, slots=True)
class StartMedia:
    """The call is answered: its media (the caller's script, its outbound audio) starts, once the streams
    named in ``awaiting`` (the answer's own) have connected or failed."""

    call: Call
    awaiting: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StopMedia:
    """The call ended: its media stops."""

    call: Call


@dataclass(frozen=True, slots=True)
class ClipRequest:
    """Audio the call plays to the caller: what to render, and how it queues."""

    key: str  # unique on the call, e.g. speak-1
    kind: str  # speak, playback or dtmf (which webhooks it has)
    text: str = ""  # speak: the payload, and how to say it
    voice: str = ""
    language: str | None = None
    ssml: bool = False
    digits: str = ""  # dtmf: the digits, each sounding duration_ms
    duration_ms: int = 250
    audio_url: str | None = None  # playback: one of these three
    media_name: str | None = None
    content: str | None = None  # base64 of a WAV or MP3 file
    cache: bool = True  # playback: keep a fetched file for the next playback of its URL
    loops: int | None = 1  # None: until stopped
    overlay: bool = False  # on top of the queue instead of in it
    heard_by_caller: bool = True
    stop: str | None = None  # before queueing it: stop the current clip, or all of them
    transcript: str = ""  # speech: the words said, as a transcription of the outbound track reports them


@dataclass(frozen=True, slots=True)
class PlayClip:
    call: Call
    clip: ClipRequest


@dataclass(frozen=True, slots=True)
class StopClips:
    """Stop the call's clips of ``kinds``: the current one or all, in the queue or the overlays."""

    call: Call
    which: str  # current or all
    kinds: frozenset[str]
    overlay: bool | None = None  # True: the overlays only; False: the queue only; None: both


@dataclass(frozen=True, slots=True)
class RecordingRequest:
    recording_id: str
    format: str  # wav or mp3
    channels: str  # single or dual
    track: str  # both, inbound or outbound
    play_beep: bool
    max_length: int  # seconds; 0: no limit
    file_name: str
    started_at: str  # ISO 8601
    base_url: str  # where the emulator serves the file (the URL the command came to)


@dataclass(frozen=True, slots=True)
class StartRecording:
    call: Call
    request: RecordingRequest


@dataclass(frozen=True, slots=True)
class StopRecording:
    call: Call
    recording_id: str


@dataclass(frozen=True, slots=True)
class PauseRecording:
    call: Call
    recording_id: str
    paused: bool


@dataclass(frozen=True, slots=True)
class GatherRequest:
    key: str
    rules: GatherRules
    prompt: ClipRequest | None = None  # speech or a file, played first
    # Tries in all: a try that times out or gets keys that are not valid starts again, prompt and all.
    maximum_tries: int = 1
    invalid_prompt: ClipRequest | None = None  # played before the prompt after keys that were not valid
    attempt: int = 1  # which try this is
    retry_prompt: ClipRequest | None = None  # this try starts with it (the invalid prompt), then the prompt


@dataclass(frozen=True, slots=True)
class StartGather:
    call: Call
    request: GatherRequest


@dataclass(frozen=True, slots=True)
class StopGather:
    call: Call


@dataclass(frozen=True, slots=True)
class Cue:
    """Something due on the call's media timeline: ``what`` is ``time_limit`` (the call ends, time_limit_secs),
    ``queue_timeout`` (max_wait_time_secs in a queue; ``result`` names the stay) or the type of a webhook sent
    then with ``result`` (answering machine detection)."""

    what: str
    result: str = ""


@dataclass(frozen=True, slots=True)
class StartTimer:
    """``cue`` happens ``after_ms`` of the call's media time from now (at --speed 0 too, in step with its audio)."""

    call: Call
    after_ms: int
    cue: Cue


@dataclass(frozen=True, slots=True)
class StartFork:
    """The call's audio goes to the fork's UDP targets as RTP from the next tick."""

    call: Call
    fork: Fork


@dataclass(frozen=True, slots=True)
class StopFork:
    call: Call
    key: str


@dataclass(frozen=True, slots=True)
class StartRefer:
    """The far end answers the refer as its scenario says, on the call's timeline (call.refer.completed or
    .failed)."""

    call: Call


@dataclass(frozen=True, slots=True)
class Connect:
    """From the next tick, ``listener``'s far end hears ``speaker``'s (one direction of a bridge)."""

    speaker: Call
    listener: Call


@dataclass(frozen=True, slots=True)
class Disconnect:
    """``listener``'s far end no longer hears ``speaker``'s."""

    speaker: Call
    listener: Call


Effect = (
    StartStream
    | StopStreams
    | Emit
    | Ring
    | StartMedia
    | StopMedia
    | PlayClip
    | StopClips
    | StartRecording
    | StopRecording
    | PauseRecording
    | StartGather
    | StopGather
    | StartTimer
    | StartFork
    | StopFork
    | StartRefer
    | Connect
    | Disconnect
)


@dataclass(frozen=True, slots=True)
class Outcome:
    data: dict[str, Any]
    effects: tuple[Effect, ...] = ()
