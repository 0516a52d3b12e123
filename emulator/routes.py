"""The public Telnyx API: ``/v2/calls/{call_control_id}/actions/{action}``. Handlers stay thin:
parse, validate against ``schemas/``, deduplicate by command_id, run the command, apply effects."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.commands import ACTIONS, CommandContext
from emulator.errors import (
    ApiError,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
    internal_error,
)
from emulator.schemas import Problem
from emulator.state import EmulatorState


async def read_body(request: Request) -> Any:
    """The JSON body; an empty body counts as ``{}`` (as the SDKs send for commands without fields)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest("The request body is not valid JSON.") from None


async def call_action(request: Request) -> Response:
    state: EmulatorState = request.app.state.emulator
    call_control_id: str = request.path_params["call_control_id"]
    action = ACTIONS.get(request.path_params["action"])
    if action is None:
        raise NotFound(f"Unknown call action '{request.path_params['action']}'.")
    body = await read_body(request)
    problems = state.schemas.validate(action.schema, body)
    if problems:
        raise ValidationFailed(problems)
    # From here to the answer nothing awaits: check, run and remember are one atomic step, so
    # identical requests arriving together cannot both run.
    now = state.clock.monotonic()
    call = state.store.lookup(call_control_id, now)
    command_id = body.get("command_id")
    if command_id is not None and state.store.is_duplicate(call_control_id, command_id, now):
        return JSONResponse({"data": {"result": "ok"}})
    context = CommandContext(
        ids=state.ids,
        user_id=state.user_id,
        call_codec=state.settings.call_codec,
        scenario=state.library.default,
        now=now,
    )
    outcome = action.run(context, state.store, call, body)
    if command_id is not None:
        state.store.remember_command(call_control_id, command_id, now)
    state.runtime.apply(outcome.effects)
    return JSONResponse({"data": outcome.data})


def api_routes() -> list[Route]:
    return [
        Route("/v2/calls/{call_control_id}/actions/{action}", call_action, methods=["POST"]),
    ]


async def render_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_json(), status_code=exc.status)


async def render_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in Telnyx's envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: ApiError = MethodNotAllowed(request.method)
        headers = exc.headers
    elif exc.status_code == 404:
        error, headers = NotFound(), None
    else:
        error = ApiError(exc.status_code, [Problem("10015", "Bad Request", str(exc.detail), None)])
        headers = exc.headers
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


async def render_unexpected(request: Request, exc: Exception) -> Response:
    error = internal_error()
    return JSONResponse(error.to_json(), status_code=error.status)
