"""The parsed TeXML tree: one frozen dataclass per verb and noun, with Telnyx's documented defaults.

A document such as::

    <Response>
      <Gather action="/menu" numDigits="1"><Say>Press 1</Say></Gather>
      <Connect><Stream url="wss://example.com/ws" bidirectionalMode="rtp"/></Connect>
    </Response>

parses (``emulator.texml.document.parse_texml``) to ``Document(verbs=(Gather(action="/menu", num_digits=1,
children=(Say(text="Press 1"),)), Connect(stream=Stream(url="wss://example.com/ws", ...))))``.
Fields take the attribute's name in snake_case; values are typed (ints, bools, enums), and ``None`` means
"not given" where Telnyx documents no default. ``line`` is where the element starts, for the executor's messages;
it takes no part in equality, so a tree built by hand compares equal to a parsed one.

Reference: https://developers.telnyx.com/docs/voice/programmable-voice/texml-verbs
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"


class RejectReason(enum.StrEnum):
    REJECTED = "rejected"
    BUSY = "busy"


class GatherInput(enum.StrEnum):
    DTMF = "dtmf"
    SPEECH = "speech"


class RecordChannels(enum.StrEnum):
    SINGLE = "single"
    DUAL = "dual"


class RecordFormat(enum.StrEnum):
    MP3 = "mp3"
    WAV = "wav"


class Trim(enum.StrEnum):
    TRIM_SILENCE = "trim-silence"
    DO_NOT_TRIM = "do-not-trim"


class RecordingEvent(enum.StrEnum):
    """A recordingStatusCallbackEvent value."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"


class DialRecord(enum.StrEnum):
    DO_NOT_RECORD = "do-not-record"
    RECORD_FROM_ANSWER = "record-from-answer"
    RECORD_FROM_RINGING = "record-from-ringing"
    RECORD_FROM_ANSWER_DUAL = "record-from-answer-dual"
    RECORD_FROM_RINGING_DUAL = "record-from-ringing-dual"


class CallEvent(enum.StrEnum):
    """A <Number statusCallbackEvent> value."""

    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    AMD = "amd"
    DTMF = "dtmf"
    COMPLETED = "completed"


class MachineDetection(enum.StrEnum):
    ENABLE = "Enable"
    DETECT_MESSAGE_END = "DetectMessageEnd"
    DISABLE = "Disable"


class StreamTrack(enum.StrEnum):
    INBOUND = "inbound_track"
    OUTBOUND = "outbound_track"
    BOTH = "both_tracks"


class StreamCodec(enum.StrEnum):
    """What the stream sends; ``default`` keeps the call's codec."""

    PCMU = "PCMU"
    PCMA = "PCMA"
    G722 = "G722"
    OPUS = "OPUS"
    AMR_WB = "AMR-WB"
    DEFAULT = "default"


class BidirectionalMode(enum.StrEnum):
    MP3 = "mp3"
    RTP = "rtp"


class BidirectionalCodec(enum.StrEnum):
    PCMU = "PCMU"
    PCMA = "PCMA"
    G722 = "G722"
    OPUS = "OPUS"
    AMR_WB = "AMR-WB"


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` (the element's body) ``loop`` times; 0 means until the verb is interrupted."""

    text: str
    voice: str = "man"
    language: str | None = None
    loop: int = 1
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Play:
    """Play the audio at ``url`` (the body), or the DTMF ``digits``, or a country's ``ring_tone``."""

    url: str | None = None
    loop: int = 1
    digits: str | None = None
    media_storage: bool = False  # the body names a file in Telnyx media storage
    failover_url: str | None = None
    continue_on_error: bool = False
    ring_tone: str | None = None
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Pause:
    length: int = 1  # seconds
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Gather:
    """Collect digits while ``children`` play, then request ``action`` with ``Digits``."""

    action: str | None = None
    method: HttpMethod | None = None  # undocumented on Gather: None means the application's voice method
    timeout: int = 5  # seconds after the nested verbs end, and between digits
    input: tuple[GatherInput, ...] = (GatherInput.DTMF,)
    finish_on_key: str = "#"
    num_digits: int | None = None
    min_digits: int = 1
    max_digits: int = 128
    valid_digits: str | None = None
    invalid_digits_action: str | None = None
    language: str = "en-US"
    speech_timeout: str | None = None
    partial_result_callback: str | None = None
    partial_result_callback_method: HttpMethod = HttpMethod.POST
    children: tuple[Say | Play | Pause, ...] = ()
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Record:
    """Record the caller until ``finish_on_key``, ``timeout`` seconds of silence or ``max_length``."""

    action: str | None = None
    method: HttpMethod = HttpMethod.POST
    finish_on_key: str = "1234567890*#"
    timeout: int = 0  # seconds of silence that end the recording; 0: silence never does
    max_length: int = 3600  # seconds; 0: no limit
    play_beep: bool = True
    trim: Trim | None = None
    channels: RecordChannels = RecordChannels.DUAL
    format: RecordFormat = RecordFormat.MP3
    recording_status_callback: str | None = None
    recording_status_callback_method: HttpMethod = HttpMethod.POST
    recording_status_callback_event: tuple[RecordingEvent, ...] = (RecordingEvent.COMPLETED,)
    transcription: bool = False
    transcription_callback: str | None = None
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Hangup:
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Reject:
    reason: RejectReason = RejectReason.REJECTED
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Redirect:
    """Fetch ``url`` (the body) and run that document instead of the rest of this one."""

    url: str
    method: HttpMethod = HttpMethod.POST
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Number:
    """A <Dial> destination; ``<Dial>+1555</Dial>`` is read as one Number with these defaults."""

    number: str
    status_callback: str | None = None
    status_callback_event: tuple[CallEvent, ...] = (CallEvent.COMPLETED,)
    status_callback_method: HttpMethod = HttpMethod.POST
    url: str | None = None  # a document run on the callee before the legs are bridged
    method: HttpMethod = HttpMethod.POST
    send_digits: str | None = None
    machine_detection: MachineDetection = MachineDetection.DISABLE
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Dial:
    """Call ``numbers`` (at once, or in order when ``sequential``) and bridge the first that answers."""

    numbers: tuple[Number, ...]
    action: str | None = None
    method: HttpMethod = HttpMethod.POST
    caller_id: str | None = None
    from_display_name: str | None = None
    hangup_on_star: bool = False
    timeout: int = 30  # seconds of ringing
    time_limit: int = 14400  # seconds of talk
    record: DialRecord = DialRecord.DO_NOT_RECORD
    recording_status_callback: str | None = None
    recording_status_callback_method: HttpMethod = HttpMethod.POST
    recording_status_callback_event: tuple[RecordingEvent, ...] = (RecordingEvent.COMPLETED,)
    answer_on_bridge: bool = False
    sequential: bool = False
    ring_tone: str = "us"
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A <Stream> custom parameter, sent in the WebSocket ``start`` message."""

    name: str
    value: str = ""
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Stream:
    """The call's media over a WebSocket; ``url`` is None only under <Stop>."""

    url: str | None = None
    name: str | None = None
    track: StreamTrack = StreamTrack.INBOUND
    codec: StreamCodec = StreamCodec.DEFAULT
    bidirectional_mode: BidirectionalMode = BidirectionalMode.MP3
    bidirectional_codec: BidirectionalCodec = BidirectionalCodec.PCMU
    bidirectional_sampling_rate: int = 8000
    status_callback: str | None = None
    status_callback_method: HttpMethod = HttpMethod.POST
    enable_reconnect: bool = True
    parameters: tuple[Parameter, ...] = ()
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Connect:
    """Run ``stream`` and wait: the next verb starts when the stream stops."""

    stream: Stream
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Start:
    """Start ``stream`` and go straight on to the next verb."""

    stream: Stream
    line: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the stream named ``stream.name``, or the call's stream when it has no name."""

    stream: Stream
    line: int = field(default=0, compare=False, kw_only=True)


Verb = Say | Play | Pause | Gather | Record | Hangup | Reject | Redirect | Dial | Connect | Start | Stop


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed <Response>: its verbs in order, and what the parser let pass but the author should hear about."""

    verbs: tuple[Verb, ...]
    warnings: tuple[str, ...] = ()
