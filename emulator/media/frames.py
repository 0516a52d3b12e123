"""Media-streaming messages the emulator sends to the app's WebSocket (Telnyx -> app).

Every message is one JSON text frame. Counters are strings; ``stream_id`` sits at the top level::

    {"event": "connected", "version": "1.0.0"}
    {"event": "start", "sequence_number": "1", "start": {"user_id": ..., "call_control_id": ...,
     "call_session_id": ..., "from": ..., "to": ..., "client_state": ..., "custom_parameters": {...},
     "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}, "stream_id": ...}
    {"event": "media", "sequence_number": "2", "media": {"track": "inbound", "chunk": "1",
     "timestamp": "0", "payload": "<base64 of raw codec bytes, no RTP header>"}, "stream_id": ...}
    {"event": "dtmf", "sequence_number": "9", "occurred_at": "...Z", "dtmf": {"digit": "1"}, "stream_id": ...}
    {"event": "mark", "sequence_number": "10", "mark": {"name": "..."}, "stream_id": ...}
    {"event": "stop", "sequence_number": "11", "stop": {"user_id": ..., "call_control_id": ...}, "stream_id": ...}
    {"event": "error", "payload": {"code": 100003, "title": "malformed_frame", "detail": ...}, "stream_id": ...}

Counting (Telnyx does not document it; see docs/protocol-notes.md): ``sequence_number`` counts every
message after ``connected`` on the connection, starting at "1" for ``start``; ``chunk`` counts media
frames per track from "1"; ``timestamp`` is the milliseconds of audio before the frame on its track.

Reference: https://developers.telnyx.com/docs/voice/programmable-voice/media-streaming
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.calls.models import StreamSpec

PROTOCOL_VERSION = "1.0.0"
AUTH_TOKEN_KEY = "x-telnyx-streaming-auth-token"

# Media frames are most of the traffic: a %-template is several times faster than json.dumps, and
# every value in it (digits, "inbound"/"outbound", base64, a UUID) needs no JSON escaping.
_MEDIA_TEMPLATE = (
    '{"event":"media","sequence_number":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d",'
    '"payload":"%s"},"stream_id":"%s"}'
)


def _dumps(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def connected_frame(auth_token: str | None = None) -> str:
    message: dict[str, Any] = {"event": "connected", "version": PROTOCOL_VERSION}
    if auth_token is not None:
        message["connected"] = {AUTH_TOKEN_KEY: auth_token}
    return _dumps(message)


def media_format(codec: str, sample_rate: int) -> dict[str, Any]:
    return {"encoding": codec, "sample_rate": sample_rate, "channels": 1}


def start_frame(sequence_number: int, spec: StreamSpec, sample_rate: int) -> str:
    start: dict[str, Any] = {
        "user_id": spec.user_id,
        "call_control_id": spec.call_control_id,
        "call_session_id": spec.call_session_id,
        "from": spec.from_,
        "to": spec.to,
    }
    if spec.client_state is not None:
        start["client_state"] = spec.client_state
    # The request sends [{name, value}]; the frame carries them as one flat object.
    start["custom_parameters"] = dict(spec.custom_parameters)
    start["media_format"] = media_format(spec.codec, sample_rate)
    return _dumps(
        {"event": "start", "sequence_number": str(sequence_number), "start": start, "stream_id": spec.stream_id}
    )


def media_frame(sequence_number: int, stream_id: str, track: str, chunk: int, timestamp: int, payload: str) -> str:
    """``track`` is "inbound" or "outbound"; ``payload`` is already base64."""
    return _MEDIA_TEMPLATE % (sequence_number, track, chunk, timestamp, payload, stream_id)


def dtmf_frame(sequence_number: int, stream_id: str, digit: str, occurred_at: str) -> str:
    return _dumps(
        {
            "event": "dtmf",
            "sequence_number": str(sequence_number),
            "occurred_at": occurred_at,
            "dtmf": {"digit": digit},
            "stream_id": stream_id,
        }
    )


def mark_frame(sequence_number: int, stream_id: str, name: str) -> str:
    return _dumps(
        {"event": "mark", "sequence_number": str(sequence_number), "mark": {"name": name}, "stream_id": stream_id}
    )


def stop_frame(sequence_number: int, spec: StreamSpec) -> str:
    return _dumps(
        {
            "event": "stop",
            "sequence_number": str(sequence_number),
            "stop": {"user_id": spec.user_id, "call_control_id": spec.call_control_id},
            "stream_id": spec.stream_id,
        }
    )


def error_frame(stream_id: str, code: int, title: str, detail: str) -> str:
    return _dumps(
        {"event": "error", "payload": {"code": code, "title": title, "detail": detail}, "stream_id": stream_id}
    )


# -- messages the app sends back (bidirectional streaming) ------------------------------------
#
#     {"event": "media", "media": {"payload": "<base64>"}}      audio to play (rtp: raw codec bytes; mp3: a file)
#     {"event": "mark", "mark": {"name": "greeting-done"}}      echoed once the audio before it has played
#     {"event": "clear"}                                        drop queued audio, echo pending marks
#
# A ``stream_id`` in them is allowed and ignored. Problems are answered with an ``error`` frame.

MALFORMED = (100003, "malformed_frame")
INVALID_MEDIA = (100004, "invalid_media")
RATE_LIMITED = (100005, "rate_limit_reached")
# Line-wrapped base64 (base64.encodebytes, MIME encoders) is still base64: whitespace between the
# characters is dropped before strict decoding, which refuses anything else outside the alphabet.
_BASE64_WHITESPACE = str.maketrans("", "", " \t\r\n")


@dataclass(frozen=True, slots=True)
class ClientMedia:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ClientMark:
    name: str


@dataclass(frozen=True, slots=True)
class ClientClear:
    pass


@dataclass(frozen=True, slots=True)
class FrameProblem:
    code: int
    title: str
    detail: str


ClientFrame = ClientMedia | ClientMark | ClientClear


def _malformed(detail: str) -> FrameProblem:
    return FrameProblem(*MALFORMED, detail)


def parse_client_frame(message: str | bytes) -> ClientFrame | FrameProblem:
    """One WebSocket message from the app, as a frame or the problem to report in an ``error`` frame."""
    if isinstance(message, bytes):
        return _malformed("Received a binary frame; send JSON text frames.")
    try:
        data = json.loads(message)
    except ValueError:
        return _malformed("Received frame was not formed correctly: not valid JSON.")
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return _malformed("Received frame was not formed correctly: expected a JSON object with an 'event'.")
    event = data["event"]
    if event == "media":
        media = data.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            return _malformed("A media frame needs media.payload, a base64 string.")
        try:
            return ClientMedia(base64.b64decode(payload.translate(_BASE64_WHITESPACE), validate=True))
        except ValueError:
            return FrameProblem(*INVALID_MEDIA, "Media provided was not base64 encoded.")
    if event == "mark":
        mark = data.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str) or not name:
            return _malformed("A mark frame needs mark.name, a non-empty string.")
        return ClientMark(name)
    if event == "clear":
        return ClientClear()
    return _malformed(f"Unknown event {event!r}; the app may send media, mark and clear.")
