"""Reading a TeXML element's attributes into typed values, by a table per element.

A table maps the XML name to the dataclass field and a converter: ``{"numDigits": ("num_digits", integer(1))}``.
A converter turns the raw string into the value, or raises ``ValueError`` with what it expected; it may also
return a warning for a value it keeps although Telnyx documents a narrower range.

Leniency, where Telnyx's docs are silent:
- an attribute nobody documents is ignored with a warning (a typo such as ``numdigits`` gets a hint);
- a documented attribute the emulator does not model (TTS provider options, AMD tuning) is ignored silently;
- a well-formed number outside the documented range is kept, with a warning (apps send ``<Pause length="86400">``);
- HTTP methods are read case-insensitively, as the TeXML application object spells them ``get``/``post``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from emulator.texml.errors import TexmlError, TexmlErrorKind, position
from emulator.texml.verbs import (
    BidirectionalCodec,
    BidirectionalMode,
    CallEvent,
    DialRecord,
    GatherInput,
    HttpMethod,
    MachineDetection,
    RecordChannels,
    RecordFormat,
    RecordingEvent,
    RejectReason,
    StreamCodec,
    StreamTrack,
    Trim,
)

Converter = Callable[[str], tuple[Any, str | None]]  # raw value -> (value, warning or None)
Spec = Mapping[str, tuple[str, Converter]]  # XML attribute name -> (field name, converter)

E = TypeVar("E", bound=enum.StrEnum)

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE_FALSE = {"true": True, "false": False}


def text(raw: str) -> tuple[Any, str | None]:
    return raw, None


def url(raw: str) -> tuple[Any, str | None]:
    # Relative URLs are allowed: the executor resolves them against the document's own URL.
    value = raw.strip()
    if not value:
        raise ValueError("expected a URL, got an empty value")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- reading it checks it
    except ValueError as exc:
        raise ValueError(f"expected a URL, got {raw!r} ({exc})") from None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return value, None


def websocket_url(raw: str) -> tuple[Any, str | None]:
    value = raw.strip()
    if not value.startswith(("ws://", "wss://")):
        raise ValueError(f"expected a ws:// or wss:// URL, got {raw!r}")
    return value, None


def boolean(raw: str) -> tuple[Any, str | None]:
    value = _TRUE_FALSE.get(raw.strip().lower())
    if value is None:
        raise ValueError(f"expected true or false, got {raw!r}")
    return value, None


def integer(low: int, high: int | None = None, *, floor: int | None = None) -> Converter:
    """A whole number; below ``floor`` (default ``low``) is an error, outside ``low``-``high`` a warning."""
    hard_floor = low if floor is None else floor

    def convert(raw: str) -> tuple[Any, str | None]:
        if not _INTEGER.fullmatch(raw.strip()):
            raise ValueError(f"expected a whole number, got {raw!r}")
        value = int(raw)
        if value < hard_floor:
            raise ValueError(f"expected a number of at least {hard_floor}, got {value}")
        if value < low or (high is not None and value > high):
            documented = f"{low}-{high}" if high is not None else f"at least {low}"
            return value, f"{value} is outside Telnyx's documented range ({documented}); kept as given"
        return value, None

    return convert


def one_of_numbers(choices: Collection[int]) -> Converter:
    """A whole number Telnyx documents as one of ``choices``; another positive one is kept with a warning."""
    listed = ", ".join(str(choice) for choice in sorted(choices))

    def convert(raw: str) -> tuple[Any, str | None]:
        value, _ = integer(1)(raw)
        if value not in choices:
            return value, f"{value} is not one of Telnyx's documented values ({listed}); kept as given"
        return value, None

    return convert


def choice(cls: type[E], aliases: Mapping[str, E] | None = None) -> Converter:
    """One value of ``cls``, spelled exactly as Telnyx documents it (values are case-sensitive)."""

    def convert(raw: str) -> tuple[Any, str | None]:
        value = raw.strip()
        if aliases and value in aliases:
            return aliases[value], None
        try:
            return cls(value), None
        except ValueError:
            allowed = ", ".join(member.value for member in cls)
            raise ValueError(f"expected one of {allowed}, got {raw!r}") from None

    return convert


def method(raw: str) -> tuple[Any, str | None]:
    try:
        return HttpMethod(raw.strip().upper()), None
    except ValueError:
        raise ValueError(f"expected GET or POST, got {raw!r}") from None


def events(cls: type[E]) -> Converter:
    """A space-separated set of ``cls`` values (commas are accepted too), in the order given, without repeats."""

    def convert(raw: str) -> tuple[Any, str | None]:
        words = [word for word in re.split(r"[\s,]+", raw.strip()) if word]
        if not words:
            raise ValueError("expected at least one event, got an empty value")
        found: list[E] = []
        for word in words:
            member, _ = choice(cls)(word)
            if member not in found:
                found.append(member)
        return tuple(found), None

    return convert


def keys(allowed: str, *, may_be_empty: bool = False) -> Converter:
    """A string of DTMF keys (or pauses such as ``w``), each one of ``allowed``."""

    def convert(raw: str) -> tuple[Any, str | None]:
        value = raw.strip()
        if not value and not may_be_empty:
            raise ValueError("expected at least one key, got an empty value")
        wrong = sorted({key for key in value if key not in allowed})
        if wrong:
            raise ValueError(f"expected keys from {allowed!r}, got {raw!r} (not allowed: {''.join(wrong)})")
        return value, None

    return convert


def read_attributes(
    element: str,
    attributes: Mapping[str, str],
    spec: Spec,
    *,
    line: int,
    column: int,
    warnings: list[str],
    ignored: Collection[str] = (),
) -> dict[str, Any]:
    """The typed values of ``attributes`` under their field names; absent ones keep the dataclass default.

    Raises:
        TexmlError: BAD_ATTRIBUTE naming the element and attribute when a value does not convert.
    """
    values: dict[str, Any] = {}
    by_lower = {name.lower(): name for name in [*spec, *ignored]}
    for name, raw in attributes.items():
        if name == "xmlns" or name.startswith("xmlns:"):
            continue  # namespace declarations carry no instruction
        if name in spec:
            field, convert = spec[name]
            try:
                values[field], warning = convert(raw)
            except ValueError as exc:
                raise TexmlError(
                    TexmlErrorKind.BAD_ATTRIBUTE, str(exc), line=line, column=column, element=element, attribute=name
                ) from None
            if warning:
                warnings.append(f"{position(line, column)}: <{element}> attribute '{name}': {warning}")
        elif name not in ignored:
            hint = by_lower.get(name.lower())
            also = f" (did you mean '{hint}'? attribute names are case-sensitive)" if hint else ""
            warnings.append(
                f"{position(line, column)}: <{element}> attribute '{name}' is not a TeXML attribute of "
                f"<{element}>; ignored{also}"
            )
    return values


# The tables, one per element; the fields and defaults are in emulator/texml/verbs.py.
_ALL_KEYS = "0123456789*#"
_DIAL_KEYS = "0123456789*#wW"  # w: half a second's pause

SAY: Spec = {"voice": ("voice", text), "language": ("language", text), "loop": ("loop", integer(0, 10))}
SAY_IGNORED = frozenset(
    {"gender", "effect", "voiceSpeed", "api_key_ref", "region", "pronunciationDictId", "languageBoost"}
)

PLAY: Spec = {
    "loop": ("loop", integer(0)),
    "digits": ("digits", keys(_DIAL_KEYS)),
    "mediaStorage": ("media_storage", boolean),
    "failoverUrl": ("failover_url", url),
    "continueOnError": ("continue_on_error", boolean),
    "ringTone": ("ring_tone", text),
}

PAUSE: Spec = {"length": ("length", integer(1, 180, floor=0))}

GATHER: Spec = {
    "action": ("action", url),
    "method": ("method", method),
    "timeout": ("timeout", integer(1, 120, floor=0)),
    "input": ("input", events(GatherInput)),
    "finishOnKey": ("finish_on_key", keys(_ALL_KEYS, may_be_empty=True)),
    "numDigits": ("num_digits", integer(1, 128)),
    "minDigits": ("min_digits", integer(1, 128)),
    "maxDigits": ("max_digits", integer(1, 128)),
    "validDigits": ("valid_digits", keys(_ALL_KEYS + "ABCD")),
    "invalidDigitsAction": ("invalid_digits_action", url),
    "language": ("language", text),
    "speechTimeout": ("speech_timeout", text),
    "partialResultCallback": ("partial_result_callback", url),
    "partialResultCallbackMethod": ("partial_result_callback_method", method),
}
GATHER_IGNORED = frozenset(
    {
        "profanityFilter",
        "useEnhanced",
        "hints",
        "keyterms",
        "smartFormat",
        "transcriptionEngine",
        "model",
        "apiKeyRef",
        "region",
    }
)

_RECORDING_CALLBACK: Spec = {
    "recordingStatusCallback": ("recording_status_callback", url),
    "recordingStatusCallbackMethod": ("recording_status_callback_method", method),
    "recordingStatusCallbackEvent": ("recording_status_callback_event", events(RecordingEvent)),
}

RECORD: Spec = {
    "action": ("action", url),
    "method": ("method", method),
    "finishOnKey": ("finish_on_key", keys(_ALL_KEYS, may_be_empty=True)),
    "timeout": ("timeout", integer(0)),
    "maxLength": ("max_length", integer(0, 14400)),
    "playBeep": ("play_beep", boolean),
    "trim": ("trim", choice(Trim)),
    # The REST API and <Recording> say mono where <Record> says single.
    "channels": ("channels", choice(RecordChannels, {"mono": RecordChannels.SINGLE})),
    "format": ("format", choice(RecordFormat)),
    "transcription": ("transcription", boolean),
    "transcriptionCallback": ("transcription_callback", url),
    **_RECORDING_CALLBACK,
}
RECORD_IGNORED = frozenset({"transcriptionEngine", "transcriptionLanguage"})

REJECT: Spec = {"reason": ("reason", choice(RejectReason))}

REDIRECT: Spec = {"method": ("method", method)}

DIAL: Spec = {
    "action": ("action", url),
    "method": ("method", method),
    "callerId": ("caller_id", text),
    "fromDisplayName": ("from_display_name", text),
    "hangupOnStar": ("hangup_on_star", boolean),
    "timeout": ("timeout", integer(5, 120, floor=1)),
    "timeLimit": ("time_limit", integer(60, 14400, floor=1)),
    "record": ("record", choice(DialRecord)),
    "answerOnBridge": ("answer_on_bridge", boolean),
    "sequential": ("sequential", boolean),
    "ringTone": ("ring_tone", text),
    **_RECORDING_CALLBACK,
}
DIAL_IGNORED = frozenset(
    {
        "recordingChannels",
        "recordMaxLength",
        "sendRecordingUrl",
        "audioUrl",
        "passDiversionHeader",
        "machineDetectionSpeechThreshold",
        "machineDetectionSpeechEndThreshold",
        "machineDetectionSilenceTimeout",
    }
)

NUMBER: Spec = {
    "statusCallback": ("status_callback", url),
    "statusCallbackEvent": ("status_callback_event", events(CallEvent)),
    "statusCallbackMethod": ("status_callback_method", method),
    "url": ("url", url),
    "method": ("method", method),
    "sendDigits": ("send_digits", keys(_DIAL_KEYS)),
    "machineDetection": ("machine_detection", choice(MachineDetection)),
}
NUMBER_IGNORED = frozenset({"detectionMode", "machineDetectionTimeout", "machineDetectionPromptEndTimeout"})

STREAM: Spec = {
    "url": ("url", websocket_url),
    "name": ("name", text),
    "track": ("track", choice(StreamTrack)),
    "codec": ("codec", choice(StreamCodec)),
    "bidirectionalMode": ("bidirectional_mode", choice(BidirectionalMode)),
    "bidirectionalCodec": ("bidirectional_codec", choice(BidirectionalCodec)),
    "bidirectionalSamplingRate": ("bidirectional_sampling_rate", one_of_numbers({8000, 16000, 24000})),
    "statusCallback": ("status_callback", url),
    "statusCallbackMethod": ("status_callback_method", method),
    "enableReconnect": ("enable_reconnect", boolean),
}

PARAMETER: Spec = {"name": ("name", text), "value": ("value", text)}
