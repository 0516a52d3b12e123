"""Webhook payloads for call and streaming events, built from the store's plain data.

Shapes follow Telnyx's documented examples, e.g. ``call.answered``::

    {"call_control_id": "v3:...", "call_leg_id": "...", "call_session_id": "...",
     "client_state": "aGk=", "connection_id": "...", "from": "+1...", "to": "+1...",
     "start_time": "2026-01-01T00:00:00.000000Z", "state": "answered"}

Streaming events carry no ``call.`` prefix: ``streaming.started``, ``streaming.stopped``,
``streaming.failed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.models import Call, Direction, StreamRecord

# hangup_cause -> the SIP status Telnyx reports beside it.
SIP_CAUSES = {
    "normal_clearing": "200",
    "user_busy": "486",
    "call_rejected": "603",
    "timeout": "480",
    "no_answer": "480",
    "originator_cancel": "487",
    "time_limit": "200",  # Telnyx ends an answered call itself, with a BYE
    "unspecified": "500",
}


def leg_payload(call: Call) -> dict[str, Any]:
    """The fields of every call event; alone in those about a command's progress (call.speak.*, call.playback.*)."""
    return {
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "client_state": call.client_state,
        "connection_id": call.connection_id,
    }


def call_payload(call: Call) -> dict[str, Any]:
    """The fields every call event has: the leg's, and the numbers."""
    return {**leg_payload(call), "from": call.from_, "to": call.to}


# The codecs an emulated caller's phone offers, and those the emulated Call Control App accepts
# (docs/webhooks.md); the call's own codec is named first in both.
OFFERED_CODECS = ("PCMU", "PCMA", "G722")
CONNECTION_CODECS = ("G722", "PCMU", "PCMA", "G729", "OPUS", "VP8", "H264")
# The host in the SIP URIs of an incoming call: the caller's side (a carrier's gateway) and Telnyx's.
CALLER_SIP_HOST = "127.0.0.1"
TELNYX_SIP_HOST = "sip.telnyx.com"


def call_initiated(call: Call, start_time: str, call_codec: str = "PCMU") -> dict[str, Any]:
    payload = {
        **call_payload(call),
        "caller_id_name": call.from_,  # no CNAM lookup: Telnyx falls back to the number
        "direction": call.direction.value,
        "start_time": start_time,
        "state": call.state.value,
    }
    if call.direction is Direction.INCOMING:  # what a real inbound call's SIP INVITE tells Telnyx
        payload.update(
            calling_party_type="pstn" if _is_number(call.from_) else "sip",
            from_sip_uri=f"{call.from_}@{CALLER_SIP_HOST}",
            to_sip_uri=f"{call.to}@{TELNYX_SIP_HOST}",
            offered_codecs=_codecs_with(call_codec, OFFERED_CODECS),
            connection_codecs=_codecs_with(call_codec, CONNECTION_CODECS),
        )
    return payload


def _is_number(party: str) -> bool:
    return party.removeprefix("+").isdigit()


def _codecs_with(first: str, codecs: tuple[str, ...]) -> str:
    return ",".join((first, *(codec for codec in codecs if codec != first)))


def call_answered(call: Call) -> dict[str, Any]:
    return {**call_payload(call), "start_time": call.start_time, "state": "answered"}


def call_hangup(call: Call, cause: str, source: str) -> dict[str, Any]:
    return {
        **call_payload(call),
        "hangup_cause": cause,
        "hangup_source": source,
        "sip_hangup_cause": SIP_CAUSES.get(cause, "500"),
        "start_time": call.start_time,
        "end_time": call.end_time,
        "state": "hangup",
        "call_quality_stats": call_quality_stats(call),
    }


def call_quality_stats(call: Call) -> dict[str, Any] | None:
    """RTP figures of an answered call (None before the answer, as Telnyx sends): one packet each way per 20 ms
    of the call's media, none lost, no jitter, the best MOS a narrowband call reaches (docs/webhooks.md)."""
    if call.start_time is None:
        return None
    packets = str(call.media_ticks)
    return {
        "inbound": {
            "jitter_max_variance": "0.00",
            "jitter_packet_count": "0",
            "mos": "4.50",
            "packet_count": packets,
            "skip_packet_count": "0",
        },
        "outbound": {"packet_count": packets, "skip_packet_count": "0"},
    }


def app_hangup_source(call: Call) -> str:
    """Who hung up when the app sends `hangup`: the app is the callee of an incoming call."""
    return "callee" if call.direction is Direction.INCOMING else "caller"


def far_end_hangup_source(call: Call) -> str:
    """Who hung up when the scenario's far end does: the caller of an incoming call, the callee of a dialed one."""
    return "caller" if call.direction is Direction.INCOMING else "callee"


def dtmf_received(call: Call, digit: str) -> dict[str, Any]:
    return {**call_payload(call), "digit": digit}


def _stream_payload(call: Call, record: StreamRecord) -> dict[str, Any]:
    payload = call_payload(call)
    payload["client_state"] = record.spec.client_state
    return payload


def streaming_started(call: Call, record: StreamRecord) -> dict[str, Any]:
    return {**_stream_payload(call, record), "stream_url": record.spec.stream_url}


def streaming_stopped(call: Call, record: StreamRecord) -> dict[str, Any]:
    return {**_stream_payload(call, record), "stream_url": record.spec.stream_url}


def streaming_failed(call: Call, record: StreamRecord) -> dict[str, Any]:
    return {
        **_stream_payload(call, record),
        "failure_reason": record.end_reason or "connection_failed",
        "stream_id": record.spec.stream_id,
        "stream_params": {"stream_url": record.spec.stream_url, "track": record.spec.track.value},
        "stream_type": "websocket",
    }


def speak_ended(call: Call, status: str) -> dict[str, Any]:
    return {**leg_payload(call), "status": status}


def playback(call: Call, details: Mapping[str, Any], status: str | None = None) -> dict[str, Any]:
    """call.playback.started, or .ended with ``status`` (and ``status_detail`` when it failed)."""
    payload = {**leg_payload(call), **{k: v for k, v in details.items() if k != "status_detail"}}
    if status is not None:
        payload["status"] = status
        if details.get("status_detail"):
            payload["status_detail"] = details["status_detail"]
    return payload


def recording_saved(
    call: Call, channels: str, started_at: str, ended_at: str, urls: Mapping[str, str]
) -> dict[str, Any]:
    """call.recording.saved: where the file is (the emulator serves it, without a key, as Telnyx's links are)."""
    return {
        **leg_payload(call),
        "channels": channels,
        "recording_started_at": started_at,
        "recording_ended_at": ended_at,
        "recording_urls": dict(urls),
        "public_recording_urls": dict(urls),
    }


def gather_ended(call: Call, status: str, digits: str) -> dict[str, Any]:
    return {**call_payload(call), "digits": digits, "status": status}


# How sure the emulated recogniser is of words it knows were said (docs/transcription.md).
TRANSCRIPT_CONFIDENCE = 0.98


def transcription(call: Call, transcript: str, is_final: bool, track: str) -> dict[str, Any]:
    """call.transcription: words heard on ``track`` (inbound: the far end; outbound: what the call played)."""
    data = {
        "transcript": transcript,
        "confidence": TRANSCRIPT_CONFIDENCE,
        "is_final": is_final,
        "transcription_track": track,
    }
    return {**leg_payload(call), "transcription_data": data}


def machine_detection(call: Call, result: str) -> dict[str, Any]:
    """call.machine.detection.ended, .greeting.ended and their premium kin: the verdict in ``result``."""
    return {**call_payload(call), "result": result}


def fork(call: Call, stream_type: str) -> dict[str, Any]:
    """call.fork.started and call.fork.stopped."""
    return {**leg_payload(call), "stream_type": stream_type}


def call_enqueued(call: Call, queue: str, position: int, average_wait_time_secs: int) -> dict[str, Any]:
    """call.enqueued: where the call now waits (``current_position`` counts from 1)."""
    return {
        **leg_payload(call),
        "queue": queue,
        "current_position": position,
        "queue_avg_wait_time_secs": average_wait_time_secs,
    }


def call_dequeued(call: Call, queue: str, position: int, wait_time_secs: int, reason: str) -> dict[str, Any]:
    """call.dequeued: the call left ``queue`` from ``position``; ``reason`` is bridged, hangup, leave or timeout."""
    return {
        **leg_payload(call),
        "queue": queue,
        "queue_position": position,
        "wait_time_secs": wait_time_secs,
        "reason": reason,
    }


def refer(call: Call, sip_notify_response: int) -> dict[str, Any]:
    """call.refer.started, .completed and .failed: the SIP status of the NOTIFY that reported it."""
    return {**call_payload(call), "sip_notify_response": sip_notify_response}


def sip_info_received(call: Call, content_type: str, body: str) -> dict[str, Any]:
    """call.sip_info.received, on the leg bridged to the one that sent the INFO (Telnyx's spec names the event
    without a schema: the leg's fields and the INFO's content, docs/sip.md)."""
    return {**call_payload(call), "content_type": content_type, "body": body}


def siprec_started(call: Call) -> dict[str, Any]:
    return leg_payload(call)


def siprec_stopped(call: Call, hangup_cause: str) -> dict[str, Any]:
    """siprec.stopped: ``hangup_cause`` is the Q.850 name of why the session to the recorder ended."""
    return {**leg_payload(call), "hangup_cause": hangup_cause}


def siprec_failed(call: Call, failure_cause: str) -> dict[str, Any]:
    return {**leg_payload(call), "failure_cause": failure_cause}


def conversation_ended(
    call: Call, conversation_id: str, duration_sec: int, reason: str | None, details: Mapping[str, Any]
) -> dict[str, Any]:
    """call.conversation.ended: an AI conversation (assistant, gather_using_ai, Conversation Relay) is over;
    ``details`` holds what is known of it (assistant_id, llm_model, stt_model, tts_*)."""
    return {
        **call_payload(call),
        "calling_party_type": "pstn" if _is_number(call.from_) else "sip",
        "conversation_id": conversation_id,
        "duration_sec": duration_sec,
        "reason": reason,
        **details,
    }


def ai_gather(call: Call, history: list[dict[str, str]], **fields: Any) -> dict[str, Any]:
    """call.ai_gather.ended (``result``, ``status``), .partial_results (``partial_results``) and
    .message_history_updated: the conversation so far, and what the event adds."""
    return {**call_payload(call), "message_history": [dict(message) for message in history], **fields}


def payment(call: Call, method: str, connector: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """call.payment.progress and call.payment.completed: the call's fields, the payment's, and what was keyed."""
    return {**call_payload(call), "payment_method": method, "payment_connector": connector, **fields}
