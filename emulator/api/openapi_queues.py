"""The queue routes of the OpenAPI document (``emulator/api/queues.py``): their paths and response shapes.

Kept apart from ``openapi.py`` so that file stays one screenful of the call routes; it passes its operation
builder in (``queue_paths(operation)``), so the two build operations alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.api.openapi_components import INTEGER, STRING, envelope, object_schema, ref

PAGE_NUMBER = {
    "name": "page[number]",
    "in": "query",
    "required": False,
    "description": "The page to return, from 1",
    "schema": {"type": "integer", "minimum": 1, "default": 1},
}
PAGE_SIZE = {
    "name": "page[size]",
    "in": "query",
    "required": False,
    "description": "Items per page",
    "schema": {"type": "integer", "minimum": 1, "maximum": 250, "default": 20},
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": STRING}


QUEUE_NAME = _path("queue_name", "The queue's name")
CALL_ID = _path("call_control_id", "The id of a call waiting in the queue")


# openapi._operation, passed in (openapi imports this module): its keywords are body, body_required, parameters.
OperationBuilder = Callable[..., dict[str, Any]]


def _no_content(operation: dict[str, Any]) -> dict[str, Any]:
    """A 204 answer has no body."""
    operation["responses"]["204"].pop("content")
    return operation


def queue_paths(operation: OperationBuilder, telnyx: str, control: str) -> dict[str, Any]:
    data = envelope
    one_queue = (200, "The queue", data(ref("Queue")))
    gone: tuple[int, str, dict[str, Any]] = (204, "Done; no body", {})
    return {
        "/v2/queues": {
            "get": operation(
                "ListQueues",
                "The API key's queues, oldest first, paged",
                telnyx,
                (200, "A page of queues", ref("QueueList")),
                (422,),
                parameters=[PAGE_NUMBER, PAGE_SIZE],
            ),
            "post": operation(
                "CreateQueue",
                "Make an empty queue (enqueue makes one on first use too)",
                telnyx,
                one_queue,
                (400, 422),
                body="CreateQueueRequest",
            ),
        },
        "/v2/queues/{queue_name}": {
            "get": operation("RetrieveCallQueue", "One queue", telnyx, one_queue, (404,), parameters=[QUEUE_NAME]),
            "post": operation(
                "UpdateQueue",
                "Change a queue's max_size",
                telnyx,
                one_queue,
                (400, 404, 422),
                body="UpdateQueueRequest",
                parameters=[QUEUE_NAME],
            ),
            "delete": _no_content(
                operation(
                    "DeleteQueue",
                    "Delete an empty queue (400 code 90050 while calls wait in it)",
                    telnyx,
                    gone,
                    (400, 404),
                    parameters=[QUEUE_NAME],
                )
            ),
        },
        "/v2/queues/{queue_name}/calls": {
            "get": operation(
                "ListQueueCalls",
                "The calls waiting in a queue, first in first, paged",
                telnyx,
                (200, "A page of the queue's calls", ref("QueueCallList")),
                (404, 422),
                parameters=[QUEUE_NAME, PAGE_NUMBER, PAGE_SIZE],
            )
        },
        "/v2/queues/{queue_name}/calls/{call_control_id}": {
            "get": operation(
                "RetrieveCallFromQueue",
                "One call waiting in a queue: its position and wait",
                telnyx,
                (200, "The queued call", data(ref("QueueCall"))),
                (404,),
                parameters=[QUEUE_NAME, CALL_ID],
            ),
            "patch": _no_content(
                operation(
                    "UpdateCallInQueue",
                    "Change whether a queued call keeps its place after it hangs up",
                    telnyx,
                    gone,
                    (400, 404, 422),
                    body="UpdateQueuedCallRequest",
                    parameters=[QUEUE_NAME, CALL_ID],
                )
            ),
            "delete": _no_content(
                operation(
                    "RemoveQueueCall",
                    "Take a call out of a queue (a live one gets call.dequeued, reason leave)",
                    telnyx,
                    gone,
                    (404,),
                    parameters=[QUEUE_NAME, CALL_ID],
                )
            ),
        },
        "/_emulator/queues": {
            "get": operation(
                "listEmulatorQueues",
                "Every queue of the caller's namespace with its calls, in order",
                control,
                (200, "Oldest queue first", data({"type": "array", "items": ref("EmulatorQueue")})),
                (),
            )
        },
    }


_QUEUE = {
    "record_type": {"const": "queue"},
    "id": STRING,
    "name": STRING,
    "current_size": INTEGER,
    "max_size": INTEGER,
    "average_wait_time_secs": {"type": "integer", "description": "of the calls waiting now"},
    "created_at": STRING,
    "updated_at": STRING,
}
_META = object_schema({"page_number": INTEGER, "page_size": INTEGER, "total_pages": INTEGER, "total_results": INTEGER})

QUEUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "Queue": object_schema(_QUEUE),
    "QueueCall": object_schema(
        {
            "record_type": {"const": "queue_call"},
            "call_control_id": STRING,
            "call_leg_id": STRING,
            "call_session_id": STRING,
            "connection_id": STRING,
            "from": STRING,
            "to": STRING,
            "is_alive": {"type": "boolean", "description": "false: it hung up and keeps its place (keep_after_hangup)"},
            "queue_id": STRING,
            "queue_position": {"type": "integer", "minimum": 1},
            "enqueued_at": STRING,
            "wait_time_secs": INTEGER,
        }
    ),
    "QueueList": object_schema({"data": {"type": "array", "items": ref("Queue")}, "meta": _META}),
    "QueueCallList": object_schema({"data": {"type": "array", "items": ref("QueueCall")}, "meta": _META}),
    "EmulatorQueue": object_schema({**_QUEUE, "calls": {"type": "array", "items": ref("QueueCall")}}),
    "QueueSeat": object_schema(
        {
            "name": STRING,
            "queue_id": STRING,
            "position": {"type": "integer", "minimum": 1},
            "enqueued_at": STRING,
            "keep_after_hangup": {"type": "boolean"},
        }
    ),
}
