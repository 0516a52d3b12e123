"""The response shapes of the emulator's OpenAPI document: hand-written schemas of what each route returns.

Kept apart from the paths (emulator/api/openapi.py) so each file reads as one thing; request bodies are not
here, they are the JSON Schemas of ``schemas/`` themselves.
"""

from __future__ import annotations

from typing import Any

from emulator.calls.models import StreamEndReason, StreamState

# Why a stream ended, as GET /_emulator/streams reports it (docs/control-plane.md explains each).
END_REASONS = tuple(StreamEndReason)
STRING = {"type": "string"}
NULLABLESTRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def object_schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    return schema


def envelope(schema: dict[str, Any]) -> dict[str, Any]:
    return object_schema({"data": schema})


RESPONSE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": object_schema(
        {
            "code": {"type": "string", "pattern": "^[0-9]+$", "description": "Telnyx error code, a digit string"},
            "title": STRING,
            "detail": STRING,
            "source": object_schema({"pointer": {"type": "string", "description": "RFC 6901 pointer into the body"}}),
            "meta": object_schema({"url": {"type": "string", "description": "Telnyx's page about the error"}}),
        },
        required=["code", "title"],
    ),
    "Errors": object_schema({"errors": {"type": "array", "items": ref("Error"), "minItems": 1}}),
    "ActionResult": object_schema({"result": {"const": "ok"}}),
    # The id is left out of a repeated command_id's answer, which is the data of the first command with that id.
    "ActionResultWithConversationId": object_schema(
        {"result": {"const": "ok"}, "conversation_id": {**STRING, "description": "the AI conversation's id"}},
        required=["result"],
    ),
    "ActionResultWithConversationRelayId": object_schema(
        {"result": {"const": "ok"}, "conversation_relay_id": {**STRING, "description": "the relay session's id"}},
        required=["result"],
    ),
    "DialResult": object_schema(
        {
            "call_control_id": STRING,
            "call_leg_id": STRING,
            "call_session_id": STRING,
            "is_alive": {"const": False},
            "record_type": {"const": "call"},
            "recording_id": STRING,  # with record: record-from-answer: the recording to come
        },
        required=["call_control_id", "call_leg_id", "call_session_id", "is_alive", "record_type"],
    ),
    "CallStatus": object_schema(
        {
            "record_type": {"const": "call"},
            "call_control_id": STRING,
            "call_leg_id": STRING,
            "call_session_id": STRING,
            "is_alive": {"type": "boolean"},
            "client_state": STRING,
            "start_time": {"type": "string", "description": "ISO 8601 UTC, when answered"},
            "end_time": {"type": "string", "description": "ISO 8601 UTC, when ended"},
            "call_duration": {"type": "integer", "description": "seconds from answer to end"},
        },
        required=["record_type", "call_control_id", "call_leg_id", "call_session_id", "is_alive"],
    ),
    "Stream": object_schema(
        {
            "stream_id": STRING,
            "call_control_id": STRING,
            "stream_url": STRING,
            "track": {"enum": ["inbound_track", "outbound_track", "both_tracks"]},
            "codec": STRING,
            "scenario": STRING,
            "state": {"enum": list(StreamState)},
            "end_reason": {
                "enum": [None, *END_REASONS],
                "description": "null while running; why it ended (docs/control-plane.md)",
            },
            "error": NULLABLESTRING,
            "frames_sent": {"type": "integer", "description": "start, media, dtmf, mark and stop frames"},
            "media_frames_sent": {"type": "integer", "description": "media frames, both tracks"},
            "frames_received": {"type": "integer", "description": "messages the app sent on the socket"},
            "errors_sent": {"type": "integer", "description": "error frames answering bad messages"},
            "close_code": {"type": ["integer", "null"]},
            "max_lateness_ms": {"type": "number", "description": "the worst lateness of a frame against its schedule"},
            "ticks": {"type": "integer", "description": "20 ms ticks of the call written to the stream"},
            "late_ticks": {"type": "integer", "description": "ticks written a whole frame (20 ms) or more late"},
            "started_at": {**NULLABLESTRING, "description": "ISO 8601 UTC, when the WebSocket opened"},
            "ended_at": {**NULLABLESTRING, "description": "ISO 8601 UTC, when the stream ended"},
            "app_audio": ref("AppAudio"),
            "faults": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": "media faults injected into the stream, by kind (docs/faults.md)",
            },
        }
    ),
    "AppAudio": object_schema(
        {
            "sample_rate": {
                "type": ["integer", "null"],
                "description": "the rate of the app's audio, which samples count in; null before the stream exists",
            },
            "accepted": ref("AudioAmount"),
            "played": {**ref("AudioAmount"), "description": "chunks played to their end; every sample heard"},
            "dropped": {**ref("AudioAmount"), "description": "cut by clear or by the end of the stream"},
            "unplayed": {**ref("AudioAmount"), "description": "the part of dropped left when the stream ended"},
            "queued": {**ref("AudioAmount"), "description": "still to play; accepted = played + dropped + queued"},
        }
    ),
    "AudioAmount": object_schema(
        {
            "chunks": {"type": "integer", "minimum": 0},
            "ms": {"type": "number", "minimum": 0, "description": "rounded to 0.001 ms"},
            "samples": {"type": "integer", "minimum": 0, "description": "exact, at sample_rate"},
        }
    ),
    "EmulatorCallBrief": object_schema(
        {
            "call_control_id": STRING,
            "direction": {"enum": ["incoming", "outgoing"]},
            "state": {"enum": ["parked", "bridging", "answered", "ended"]},
            "from": STRING,
            "to": STRING,
            "scenario": NULLABLESTRING,
            "created_at": {**NULLABLESTRING, "description": "when the call was created, ISO 8601 UTC"},
            "ended_at": {**NULLABLESTRING, "description": "when it ended, ISO 8601 UTC; null while it lives"},
            "media_ms": {**INTEGER, "description": "how long its media has run"},
        }
    ),
    "EmulatorCall": {
        "allOf": [
            ref("CallStatus"),
            object_schema(
                {
                    "direction": {"enum": ["incoming", "outgoing"]},
                    "state": {"enum": ["parked", "bridging", "answered", "ended"]},
                    "from": STRING,
                    "to": STRING,
                    "connection_id": STRING,
                    "scenario": NULLABLESTRING,
                    "webhook_url": NULLABLESTRING,
                    "noise_suppression": {
                        "enum": [None, "inbound", "outbound", "both"],
                        "description": "suppression_start's direction while it is on",
                    },
                    "recordings": {
                        "type": "array",
                        "items": STRING,
                        "description": "ids of record_start's recordings still running",
                    },
                    # SIP-level and AI state (emulator/api/sessions.py; docs/sip.md, docs/ai.md)
                    "sip_info": {
                        "type": "array",
                        "items": object_schema({"content_type": STRING, "body": STRING, "sent_at": STRING}),
                        "description": "send_sip_info's INFOs, oldest first",
                    },
                    "siprec": {"type": ["object", "null"], "description": "the SIPREC session running; null if none"},
                    "supervisor_role": {"enum": [None, "barge", "whisper", "monitor"]},
                    "ai_assistant": {"type": ["object", "null"], "description": "the AI assistant running"},
                    "conversation_relay": {"type": ["object", "null"], "description": "the relay session running"},
                    "ai_gather": {"type": ["object", "null"], "description": "gather_using_ai in progress"},
                    "joined_conversation": {"type": ["object", "null"], "description": "ai_assistant_join's"},
                    "queue": {
                        "anyOf": [{"type": "null"}, ref("QueueSeat")],
                        "description": "the queue the call waits in and its position (docs/queues.md); null in none",
                    },
                    "hangup_cause": {**NULLABLESTRING, "description": "as the call's call.hangup said; null while up"},
                    "hangup_source": NULLABLESTRING,
                    "traffic": object_schema(
                        {
                            "commands": INTEGER,
                            "commands_refused": {**INTEGER, "description": "the app's commands answered 4xx"},
                            "webhook_attempts": INTEGER,
                            "webhook_failures": {**INTEGER, "description": "attempts its URL answered no 2xx"},
                        }
                    ),
                    "metrics": {"type": ["object", "null"], "description": "conversation metrics (docs/metrics.md)"},
                    "texml": {
                        "type": ["object", "null"],
                        "description": "a TeXML call's document: url, document_url, documents, verb, errors "
                        "(docs/texml.md); null for a Call Control call",
                    },
                    "history": {
                        "type": "array",
                        "items": object_schema({"at": {**STRING, "description": "ISO 8601 UTC"}, "state": STRING}),
                    },
                    "streams": {"type": "array", "items": ref("Stream")},
                }
            ),
        ]
    },
    "WebhookAttempt": object_schema(
        {
            "event_id": STRING,
            "event_type": STRING,
            "call_control_id": STRING,
            "url": STRING,
            "attempt": {"type": "integer", "description": "1-based across primary and failover; 0 when skipped"},
            "is_failover": {"type": "boolean"},
            "status": {"type": ["integer", "null"]},
            "latency_ms": {"type": "number"},
            "error": NULLABLESTRING,
            "at": STRING,
            "ok": {"type": "boolean"},
            "skipped": {"type": "boolean"},
            "fault": {
                "type": ["string", "null"],
                "description": "what a webhook fault rule did to this attempt, e.g. 'flt_2: duplicate delivery'",
            },
            "payload": {
                "type": ["object", "null"],
                "description": "the body POSTed, parsed ({data, meta}); for a skipped event {data}; null if none",
            },
            "signature": {
                "type": ["object", "null"],
                "description": "the telnyx-signature-ed25519 and telnyx-timestamp headers sent; null if none",
                "additionalProperties": STRING,
            },
        }
    ),
    "JournalEntry": object_schema(
        {
            "at": STRING,
            "method": STRING,
            "path": STRING,
            "query": STRING,
            "body": {"description": "the JSON body with secrets masked, raw text if not JSON, null if empty"},
            "status": INTEGER,
            "deduplicated": {"type": "boolean"},
            "duration_ms": {"type": "number"},
            "errors": {
                "type": ["array", "null"],
                "description": "what a refused request (4xx, 5xx) was answered: Telnyx's errors; null otherwise",
            },
        }
    ),
    "Health": object_schema({"status": {"const": "ok"}}),
    "PublicKey": object_schema({"public_key": {"type": "string", "description": "base64 of the Ed25519 public key"}}),
    "ResetResult": object_schema({"calls": INTEGER, "streams_stopped": INTEGER, "seed": {"type": ["integer", "null"]}}),
    "SeedResult": object_schema({"seed": {"type": ["integer", "null"]}}),
}
