"""Telnyx's call queue resources under ``/v2/queues``, and the control plane's ``GET /_emulator/queues``.

Each API key sees its own queues (the namespace's, ``calls/queues.py``), behind the same Bearer check as
``/v2/calls``. Shapes are Telnyx's ``Queue`` and ``QueueCall``; lists are paged with ``page[number]`` and
``page[size]`` and carry Telnyx's ``meta``::

    {"data": [{"record_type": "queue", "id": "...", "name": "support", "current_size": 2, "max_size": 100,
               "average_wait_time_secs": 12, "created_at": "...", "updated_at": "..."}],
     "meta": {"page_number": 1, "page_size": 20, "total_pages": 1, "total_results": 1}}

Calls join and leave through the call actions (``enqueue``, ``leave_queue``, ``calls/actions/queueing.py``);
here they can only be read, or removed by force (docs/queues.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.routes import emulator_state, namespace_of, validated_body
from emulator.calls.actions import queueing
from emulator.calls.queues import CREATE_DEFAULT_MAX_SIZE, Queue, QueuedCall, unseat
from emulator.errors import NotFound, Problem, ValidationFailed, queue_not_empty, queue_not_found

PAGE_SIZE = 20  # Telnyx's default page[size]
MAX_PAGE_SIZE = 250


def queue_json(queue: Queue, now: float) -> dict[str, Any]:
    return {
        "record_type": "queue",
        "id": queue.id,
        "name": queue.name,
        "current_size": len(queue.waiting),
        "max_size": queue.max_size,
        "average_wait_time_secs": queue.average_wait_time_secs(now),
        "created_at": queue.created_at,
        "updated_at": queue.updated_at,
    }


def queue_call_json(seat: QueuedCall, now: float) -> dict[str, Any]:
    call = seat.call
    return {
        "record_type": "queue_call",
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "connection_id": call.connection_id,
        "from": call.from_,
        "to": call.to,
        "is_alive": call.is_alive,  # False: it hung up and was kept (keep_after_hangup)
        "queue_id": seat.queue.id,
        "queue_position": seat.position,
        "enqueued_at": seat.enqueued_timestamp,
        "wait_time_secs": seat.wait_time_secs(now),
    }


def seat_json(seat: QueuedCall | None) -> dict[str, Any] | None:
    """Where a call waits, as the control plane's call shows it (null when it is in no queue)."""
    if seat is None:
        return None
    return {
        "name": seat.queue.name,
        "queue_id": seat.queue.id,
        "position": seat.position,
        "enqueued_at": seat.enqueued_timestamp,
        "keep_after_hangup": seat.keep_after_hangup,
    }


def _page(request: Request, items: Sequence[Any]) -> tuple[Sequence[Any], dict[str, int]]:
    """The page ``page[number]`` of ``page[size]`` items, and Telnyx's ``meta`` for it."""
    number = _page_parameter(request, "page[number]", 1, None)
    size = _page_parameter(request, "page[size]", PAGE_SIZE, MAX_PAGE_SIZE)
    start = (number - 1) * size
    meta = {
        "page_number": number,
        "page_size": size,
        "total_pages": math.ceil(len(items) / size),
        "total_results": len(items),
    }
    return items[start : start + size], meta


def _page_parameter(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0
    if value < 1 or (maximum is not None and value > maximum):
        limits = f"from 1 to {maximum}" if maximum is not None else "of at least 1"
        detail = f"The '{name}' parameter must be a whole number {limits}."
        raise ValidationFailed([Problem("10015", "Invalid value", detail, None)])
    return value


def _paged(request: Request, items: Sequence[Any]) -> JSONResponse:
    page, meta = _page(request, items)
    return JSONResponse({"data": list(page), "meta": meta})


def _data(data: Any) -> JSONResponse:
    return JSONResponse({"data": data})


def _now(request: Request) -> float:
    return emulator_state(request).clock.monotonic()


def _queue(request: Request) -> Queue:
    name = request.path_params["queue_name"]
    queue = namespace_of(request).queues.get(name)
    if queue is None:
        raise queue_not_found(name)
    return queue


def _seat(request: Request) -> QueuedCall:
    queue = _queue(request)
    seat = queue.find(request.path_params["call_control_id"])
    if seat is None:
        raise NotFound(f"No call with this call_control_id waits in the '{queue.name}' queue.")
    return seat


# -- /v2/queues ----------------------------------------------------------------------------------


async def queues(request: Request) -> Response:
    # One route for both methods, so a 405 on this path lists both in its Allow header.
    if request.method == "POST":
        return await _create_queue(request)
    now = _now(request)
    return _paged(request, [queue_json(queue, now) for queue in namespace_of(request).queues])


async def _create_queue(request: Request) -> Response:
    """An empty queue; Telnyx's enqueue makes one on first use too. A name already taken is refused."""
    body = await validated_body(request, "queue_create")
    state, queues = emulator_state(request), namespace_of(request).queues
    name = body["queue_name"]
    if queues.get(name) is not None:
        detail = f"A queue named '{name}' already exists; change its max_size with POST /v2/queues/{{queue_name}}."
        raise ValidationFailed([Problem("10015", "Queue already exists", detail, "/queue_name")])
    context = state.context(namespace_of(request))
    queue = queues.create(
        name, int(body.get("max_size", CREATE_DEFAULT_MAX_SIZE)), context.ids.uuid4(), context.timestamp
    )
    return _data(queue_json(queue, context.now))


async def queue(request: Request) -> Response:
    if request.method == "POST":
        return await _update_queue(request)
    if request.method == "DELETE":
        return _delete_queue(request)
    return _data(queue_json(_queue(request), _now(request)))


async def _update_queue(request: Request) -> Response:
    """A new max_size, which may be below the calls waiting now: none leaves, no new one joins until below."""
    found = _queue(request)
    body = await validated_body(request, "queue_update")
    context = emulator_state(request).context(namespace_of(request))
    found.max_size = int(body["max_size"])
    found.updated_at = context.timestamp
    return _data(queue_json(found, context.now))


def _delete_queue(request: Request) -> Response:
    found = _queue(request)
    if found.waiting:
        raise queue_not_empty(found.name, len(found.waiting))
    namespace_of(request).queues.delete(found.name)
    return Response(status_code=204)


async def queue_calls(request: Request) -> Response:
    found, now = _queue(request), _now(request)
    return _paged(request, [queue_call_json(seat, now) for seat in found.waiting])


async def queue_call(request: Request) -> Response:
    if request.method == "DELETE":
        return _remove_call(request)
    if request.method == "PATCH":
        return await _update_call(request)
    return _data(queue_call_json(_seat(request), _now(request)))


def _remove_call(request: Request) -> Response:
    """Force the call out: a live one leaves as with leave_queue (call.dequeued, reason leave), an ended one
    kept after its hangup silently."""
    seat = _seat(request)
    state = emulator_state(request)
    state.runtime.apply(queueing.remove(state.context(namespace_of(request)), seat))
    return Response(status_code=204)


async def _update_call(request: Request) -> Response:
    seat = _seat(request)
    body = await validated_body(request, "queued_call_update")
    if "keep_after_hangup" in body:
        seat.keep_after_hangup = body["keep_after_hangup"]
        if not seat.keep_after_hangup and not seat.call.is_alive:  # kept only by the flag just turned off
            unseat(seat)
    return Response(status_code=204)


# -- the control plane ---------------------------------------------------------------------------


async def emulator_queues(request: Request) -> Response:
    """Every queue of the caller's namespace with the calls waiting in it, in order (not paged)."""
    now = _now(request)
    return _data(
        [
            {**queue_json(q, now), "calls": [queue_call_json(seat, now) for seat in q.waiting]}
            for q in namespace_of(request).queues
        ]
    )


def queue_routes() -> list[Route]:
    return [
        Route("/v2/queues", queues, methods=["GET", "POST"]),
        Route("/v2/queues/{queue_name}", queue, methods=["GET", "POST", "DELETE"]),
        Route("/v2/queues/{queue_name}/calls", queue_calls, methods=["GET"]),
        Route("/v2/queues/{queue_name}/calls/{call_control_id}", queue_call, methods=["GET", "PATCH", "DELETE"]),
        Route("/_emulator/queues", emulator_queues, methods=["GET"]),
    ]
