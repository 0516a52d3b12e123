"""The OpenAPI 3.1 document of the emulator's own API, served unauthenticated at ``GET /openapi.json``.

Request bodies are ``schemas/`` as they are (OpenAPI 3.1 is JSON Schema 2020-12) less ``$schema`` and ``$id``,
which would change how tools resolve references: the document describes exactly what the emulator validates.
Responses are described by hand; tests check the document names every route and real answers match it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import __version__
from emulator.api.openapi_components import RESPONSE_SCHEMAS, envelope, ref
from emulator.api.openapi_dashboard import dashboard_paths
from emulator.api.openapi_events import event_paths
from emulator.api.openapi_faults import fault_paths
from emulator.api.openapi_queues import QUEUE_SCHEMAS, queue_paths
from emulator.api.openapi_texml import TEXML_REQUEST_SCHEMAS, texml_paths
from emulator.api.schemas import SUFFIX, default_schema_dir
from emulator.calls.actions import ACTIONS

# schemas/<stem>.schema.json -> the component it becomes (Telnyx's names where Telnyx has the body).
# The actions' bodies come from the action registry; these are the other routes'.
REQUEST_SCHEMAS = (
    {
        "dial": "CallRequest",
        "inbound_call": "IncomingCallRequest",
        "seed": "SeedRequest",
        "call_scenario": "CallScenarioRequest",
        "caller_action": "CallerActionRequest",
        "fault_rule": "FaultRule",
        "queue_create": "CreateQueueRequest",
        "queue_update": "UpdateQueueRequest",
        "queued_call_update": "UpdateQueuedCallRequest",
    }
    | TEXML_REQUEST_SCHEMAS
    | {action.schema: action.component for action in ACTIONS.values()}
)
TELNYX = "Call Control (Telnyx API)"
CONTROL = "Control plane (emulator only)"

_ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON, or a list filter is unknown or malformed (code 10015); a queue that "
    "still holds calls cannot be deleted (code 90050)",
    401: "Missing or wrong Bearer API key (code 10009)",
    404: "Unknown resource or URL (code 10005)",
    409: "Conflicts with the current state: seeding needs an empty namespace; a call with a stream "
    "cannot change its scenario",
    413: "The body is larger than --max-body-bytes (code 10015)",
    422: "Invalid body or a command the call's state does not allow (see docs/errors.md)",
    429: "--max-streams streams are running: a command that would start one more is refused (code 10011)",
}
# The answer of POST /_emulator/calls/{call_control_id}/caller (docs/control-plane.md).
_CALLER_ACTION = {
    "type": "object",
    "required": ["call_control_id", "action", "at_ms", "duration_ms"],
    "properties": {
        "call_control_id": {"type": "string"},
        "action": {"enum": ["dtmf", "say", "play", "silence_ms", "hangup"]},
        "at_ms": {"type": "integer", "minimum": 0, "description": "Where it starts: ms of the call's media"},
        "duration_ms": {"type": "integer", "minimum": 0, "description": "How long it plays (0: a hangup)"},
    },
}
# Commands that can start a stream, and so meet the --max-streams limit.
_STREAM_STARTING = frozenset({"dialCall"} | {a.operation_id for a in ACTIONS.values() if a.starts_stream})


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _public(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation served without a key: no 401, no security requirement."""
    operation["responses"].pop("401", None)
    operation["security"] = []
    return operation


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: tuple[int, str, dict[str, Any]],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    body_required: bool = True,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status, description, schema = ok
    responses: dict[str, Any] = {str(status): {"description": description, "content": _json_content(schema)}}
    limits = {413} if body is not None else set()
    if operation_id in _STREAM_STARTING:
        limits.add(429)
    for code in sorted({401, *errors, *limits}):
        responses[str(code)] = {"description": _ERROR_DESCRIPTIONS[code], "content": _json_content(ref("Errors"))}
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": _json_content(ref(body))}
    operation["responses"] = responses
    return operation


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _filter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": {"type": "string"}}


CALL_FILTER = _filter("call_control_id", "only this call's")
STATUS_FILTER = _filter("status", "only this HTTP status (422) or class (4xx); an unknown filter is a 400")
CALL_ID = _path_parameter("call_control_id", "The call's id; in lenient mode any id names an answered call")
STREAM_ID = _path_parameter("stream_id", "The stream's id (a UUID)")


def _recording_operation() -> dict[str, Any]:
    track = _path_parameter("track", "inbound, outbound or app")
    track["schema"] = {"type": "string", "enum": ["inbound", "outbound", "app"]}
    operation = _operation(
        "getRecording",
        "One track of a stream's recording as 16-bit mono WAV",
        CONTROL,
        (200, "The WAV file", {}),
        (404,),
        parameters=[STREAM_ID, track],
    )
    operation["responses"]["200"]["content"] = {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}
    return operation


def _call_recording_operation() -> dict[str, Any]:
    name = _path_parameter(
        "name", "the recording's id and format, as call.recording.saved links it: {id}.wav or {id}.mp3"
    )
    operation = _operation(
        "getCallRecording",
        "A call recording's file (record_start), linked by call.recording.saved; no API key needed",
        CONTROL,
        (200, "The WAV or MP3 file", {}),
        (404,),
        parameters=[name],
    )
    _public(operation)  # served without a key, as Telnyx's recording links are
    binary = {"schema": {"type": "string", "format": "binary"}}
    operation["responses"]["200"]["content"] = {"audio/wav": binary, "audio/mpeg": binary}
    return operation


def _paths() -> dict[str, Any]:
    data = envelope
    paths: dict[str, Any] = {
        "/v2/calls": {
            "post": _operation(
                "dialCall",
                "Dial: an outgoing call that the scenario's callee answers (or not)",
                TELNYX,
                (200, "The call's ids; webhooks follow", data(ref("DialResult"))),
                (400, 422),
                body="CallRequest",
            )
        },
        "/v2/calls/{call_control_id}": {
            "get": _operation(
                "retrieveCallStatus",
                "A call's status",
                TELNYX,
                (200, "The call", data(ref("CallStatus"))),
                (404, 422),
                parameters=[CALL_ID],
            )
        },
    }
    for name, action in ACTIONS.items():
        paths[f"/v2/calls/{{call_control_id}}/actions/{name}"] = {
            action.method.lower(): _operation(
                action.operation_id,
                action.summary,
                TELNYX,
                (200, "Accepted (also for a repeated command_id, which runs nothing)", data(ref(action.result))),
                (400, 404, 422),
                body=action.component,
                body_required=False,  # an empty body counts as {}
                parameters=[CALL_ID],
            )
        }
    calls = ref("EmulatorCall")
    brief = {"anyOf": [calls, ref("EmulatorCallBrief")]}  # view=brief: a few fields per call
    listing = (200, "Oldest first", data({"type": "array", "items": brief}))
    paths |= {
        "/_emulator/health": {
            "get": _public(
                _operation(
                    "health", "Is the emulator up (no key needed)", CONTROL, (200, "Up", data(ref("Health"))), ()
                )
            )
        },
        "/_emulator/public-key": {
            "get": _operation(
                "getPublicKey",
                "The public key that verifies webhook signatures",
                CONTROL,
                (200, "The key", data(ref("PublicKey"))),
                (),
            )
        },
        "/_emulator/calls": {
            "post": _operation(
                "createIncomingCall",
                "Ring the app: a parked incoming call and a call.initiated webhook",
                CONTROL,
                (201, "The new call", data(calls)),
                (400, 422),
                body="IncomingCallRequest",
            ),
            "get": _operation(
                "listCalls",
                "Every call of the caller's namespace",
                CONTROL,
                listing,
                (400,),
                parameters=[
                    _filter("is_alive", "true: only calls not ended yet; false: only ended ones"),
                    _filter("state", "only calls in this state: parked, bridging, answered or ended"),
                    _filter("direction", "only incoming or outgoing calls"),
                    _filter("view", "full (the default) or brief: a few fields per call, cheap to build"),
                ],
            ),
        },
        "/_emulator/calls/{call_control_id}": {
            "get": _operation(
                "getCall",
                "One call, with its state history and streams",
                CONTROL,
                (200, "The call", data(calls)),
                (404,),
                parameters=[CALL_ID],
            )
        },
        "/_emulator/calls/{call_control_id}/metrics": {
            "get": _operation(
                "getCallMetrics",
                "The call's conversation metrics: first audio, response per turn, talk-over, barge-ins, dead air",
                CONTROL,
                (200, "The metrics, so far or final", data({"type": "object"})),
                (404,),
                parameters=[CALL_ID],
            )
        },
        "/_emulator/calls/{call_control_id}/caller": {
            "post": _operation(
                "callerAction",
                "The caller acts now: presses keys, speaks, plays a file, keeps quiet or hangs up",
                CONTROL,
                (200, "Queued, and where on the call's media timeline", data(_CALLER_ACTION)),
                (400, 404, 422),
                body="CallerActionRequest",
                parameters=[CALL_ID],
            )
        },
        "/_emulator/calls/{call_control_id}/scenario": {
            "put": _operation(
                "setCallScenario",
                "Choose what the caller says; streams started from now on play it",
                CONTROL,
                (200, "The call", data(calls)),
                (400, 404, 409, 422),
                body="CallScenarioRequest",
                parameters=[CALL_ID],
            )
        },
        "/_emulator/streams": {
            "get": _operation(
                "listStreams",
                "Every stream of the caller's calls: frame counters and pacing",
                CONTROL,
                (200, "Oldest call first", data({"type": "array", "items": ref("Stream")})),
                (),
            )
        },
        "/_emulator/streams/{stream_id}": {
            "get": _operation(
                "getStream",
                "One stream",
                CONTROL,
                (200, "The stream", data(ref("Stream"))),
                (404,),
                parameters=[STREAM_ID],
            )
        },
        "/_emulator/streams/{stream_id}/recording/{track}.wav": {"get": _recording_operation()},
        "/_emulator/call-recordings/{name}": {"get": _call_recording_operation()},
        "/_emulator/webhooks": {
            "get": _operation(
                "listWebhookAttempts",
                "Every delivery attempt of the webhooks about the caller's calls",
                CONTROL,
                (200, "Oldest first", data({"type": "array", "items": ref("WebhookAttempt")})),
                (400,),
                parameters=[_filter("event_type", "only this event type"), CALL_FILTER, STATUS_FILTER],
            )
        },
        "/_emulator/commands": {
            "get": _operation(
                "listCommands",
                "The journal: every /v2 request of the caller's API key, secrets masked",
                CONTROL,
                (200, "Oldest first", data({"type": "array", "items": ref("JournalEntry")})),
                (400,),
                parameters=[CALL_FILTER, _filter("method", "only this HTTP method"), STATUS_FILTER],
            )
        },
        "/_emulator/reset": {
            "post": _operation(
                "reset",
                "Forget the namespace's calls, commands, journal and webhook log; stop its streams",
                CONTROL,
                (200, "What was forgotten", data(ref("ResetResult"))),
                (),
            )
        },
        "/_emulator/seed": {
            "post": _operation(
                "seed",
                "Reproducible ids from now on",
                CONTROL,
                (200, "The seed in force", data(ref("SeedResult"))),
                (400, 409, 422),
                body="SeedRequest",
            )
        },
    }
    paths |= queue_paths(_operation, TELNYX, CONTROL)
    paths |= fault_paths(_operation, CONTROL, _path_parameter)
    paths |= event_paths(_operation, CONTROL)
    paths |= dashboard_paths(_operation, _public, CONTROL, CALL_ID, STREAM_ID)
    paths |= texml_paths(_operation, TELNYX, CONTROL, _path_parameter)
    return paths


def _request_schema(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


@functools.cache
def build_document(schema_dir: Path | None = None) -> dict[str, Any]:
    """The document without ``servers`` (the handler adds the URL the client used)."""
    directory = schema_dir or default_schema_dir()
    schemas = {name: _request_schema(directory / f"{stem}{SUFFIX}") for stem, name in REQUEST_SCHEMAS.items()}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "telnyx-emulator",
            "version": __version__,
            "summary": "Local emulator of Telnyx Call Control media streaming",
            "description": "The Telnyx Call Control subset the emulator serves under /v2, and its control plane "
            "under /_emulator/ (docs/control-plane.md). Every route needs `Authorization: Bearer <key>`; "
            "each key sees only its own calls.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": TELNYX, "description": "As api.telnyx.com/v2 answers them (docs/errors.md)"},
            {"name": CONTROL, "description": "Test helpers; not part of Telnyx"},
        ],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "schemas": {**schemas, **RESPONSE_SCHEMAS, **QUEUE_SCHEMAS},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "Any API key"}},
        },
    }


async def openapi_json(request: Request) -> Response:
    document = {**build_document(), "servers": [{"url": str(request.base_url).rstrip("/")}]}
    return JSONResponse(document)


def openapi_routes() -> list[Route]:
    return [Route("/openapi.json", openapi_json, methods=["GET"])]
