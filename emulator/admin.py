"""The control plane under ``/_emulator/``: things Telnyx does not have but a test needs — simulate
an incoming call, read the webhook signing key, see what was delivered."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator import events
from emulator.commands import Emit
from emulator.errors import NotFound, ValidationFailed
from emulator.models import Call, CallState, Direction, StreamRecord
from emulator.routes import call_resource, validated_body
from emulator.scenarios import ScenarioError
from emulator.schemas import Problem
from emulator.state import EmulatorState
from emulator.store import LENIENT_CONNECTION_ID


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def stream_json(record: StreamRecord) -> dict[str, Any]:
    spec = record.spec
    return {
        "stream_id": spec.stream_id,
        "stream_url": spec.stream_url,
        "track": spec.track.value,
        "codec": spec.codec,
        "scenario": spec.scenario,
        "state": record.state.value,
        "end_reason": record.end_reason,
        "error": record.error,
        "frames_sent": record.frames_sent,
        "media_frames_sent": record.media_frames_sent,
        "frames_received": record.frames_received,
        "close_code": record.close_code,
        "max_lateness_ms": round(record.max_lateness * 1000, 3),
    }


def call_json(call: Call) -> dict[str, Any]:
    return {
        **call_resource(call),
        "direction": call.direction.value,
        "state": call.state.value,
        "from": call.from_,
        "to": call.to,
        "connection_id": call.connection_id,
        "scenario": call.scenario,
        "webhook_url": call.webhook_url,
        "history": [{"at": at, "state": state.value} for at, state in call.history],
        "streams": [stream_json(record) for record in call.streams.values()],
    }


async def create_inbound_call(request: Request) -> Response:
    """Someone calls the app: a parked incoming call and a ``call.initiated`` webhook."""
    state = _state(request)
    body = await validated_body(request, "inbound_call")
    scenario = body.get("scenario")
    if scenario is not None:
        try:
            scenario = state.library.resolve(scenario)
        except ScenarioError as exc:
            raise ValidationFailed([Problem("10015", "Unknown scenario", str(exc), "/scenario")]) from None
    context = state.context()
    call = state.store.create(
        direction=Direction.INCOMING,
        state=CallState.PARKED,
        from_=body["from"],
        to=body["to"],
        connection_id=body.get("connection_id", LENIENT_CONNECTION_ID),
        now=context.now,
        client_state=body.get("client_state"),
    )
    call.scenario = scenario
    call.webhook_url = body.get("webhook_url")
    state.runtime.apply([Emit(call, "call.initiated", events.call_initiated(call))])
    return JSONResponse({"data": call_json(call)}, status_code=201)


async def get_call(request: Request) -> Response:
    call = _state(request).store.calls.get(request.path_params["call_control_id"])
    if call is None:
        raise NotFound("No call with this call_control_id.")
    return JSONResponse({"data": call_json(call)})


async def list_calls(request: Request) -> Response:
    return JSONResponse({"data": [call_json(call) for call in _state(request).store.calls.values()]})


async def public_key(request: Request) -> Response:
    return JSONResponse({"data": {"public_key": _state(request).signing_key.public_key_b64()}})


async def webhooks(request: Request) -> Response:
    sender = _state(request).runtime.webhooks
    attempts = sender.attempts if sender is not None else []
    return JSONResponse({"data": [asdict(attempt) for attempt in attempts]})


async def health(request: Request) -> Response:
    return JSONResponse({"data": {"status": "ok"}})


def admin_routes() -> list[Route]:
    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/calls", create_inbound_call, methods=["POST"]),
        Route("/_emulator/calls", list_calls, methods=["GET"]),
        Route("/_emulator/calls/{call_control_id}", get_call, methods=["GET"]),
        Route("/_emulator/public-key", public_key, methods=["GET"]),
        Route("/_emulator/webhooks", webhooks, methods=["GET"]),
    ]
