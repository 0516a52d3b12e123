"""The public Telnyx API under ``/v2``. Handlers stay thin: pick the API key's namespace, parse,
validate against ``schemas/``, deduplicate by command_id, run the pure command, hand its effects to
the runtime."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api import api_faults
from emulator.calls.actions import ACTIONS, TELNYX_ACTIONS
from emulator.calls.actions.bridging import dial_linked
from emulator.calls.effects import Outcome
from emulator.calls.models import Call
from emulator.calls.namespaces import Namespace
from emulator.calls.store import CallStore
from emulator.errors import (
    ApiError,
    MalformedRequest,
    MethodNotAllowed,
    NotEmulated,
    NotFound,
    Problem,
    ValidationFailed,
    internal_error,
    invalid_call_control_id,
)
from emulator.state import EmulatorState

log = logging.getLogger(__name__)


def emulator_state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def namespace_of(request: Request) -> Namespace:
    """The calls, commands and journal of the request's API key (``BearerAuth`` put it in the scope)."""
    return emulator_state(request).namespaces.get(request.state.api_key)


def _refuse_foreign(state: EmulatorState, namespace: Namespace, call_control_id: str) -> None:
    """A call the emulator dialed or rang under another API key is not this key's: 90015, as Telnyx
    answers for another account's call. Lenient mode would otherwise make up a second call with the
    same id here, and the command would "work" on a call nobody listens to."""
    if call_control_id in namespace.store.calls:
        return
    if any(not ns.store.calls[call_control_id].made_up for ns in state.namespaces.owners_of(call_control_id)):
        raise invalid_call_control_id(
            "This call belongs to another API key: each key sees only its own calls. Use the key that "
            "dialed or received it (telnyx-emulator call --api-key, or the Bearer key of POST /_emulator/calls)."
        )


async def read_body(request: Request) -> Any:
    """The JSON body; an empty body counts as ``{}`` (as the SDKs send for commands without fields)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest("The request body is not valid JSON.") from None
    except RecursionError:  # json's parser recurses once per nesting level
        raise MalformedRequest("The request body is nested too deeply to be parsed.") from None


async def validated_body(request: Request, schema: str) -> dict[str, Any]:
    state = emulator_state(request)
    body = await read_body(request)
    problems = state.schemas.validate(schema, body)
    if problems:
        raise ValidationFailed(problems)
    assert isinstance(body, dict)  # every schema requires an object
    return body


def _data(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"data": data})


def _base_url(request: Request) -> str:
    """Where the request came to (scheme and Host), for links to files the emulator serves. Read from the
    scope: Starlette's request.base_url parses a whole URL, and this runs for every command."""
    scope = request.scope
    for name, value in scope["headers"]:
        if name == b"host":
            return f"{scope['scheme']}://{value.decode('latin-1')}"
    host, port = scope.get("server") or ("127.0.0.1", 8000)
    return f"{scope['scheme']}://{host}:{port}"


def _perform(
    request: Request, store: CallStore, key: str, body: dict[str, Any], now: float, run: Callable[[], Outcome]
) -> Response:
    """Run a command once per ``command_id`` and ``key`` (the call; "" for dial), answer its data, apply its effects.

    The one place command_ids are honoured. Nothing awaits from the check to the remember, so identical requests
    arriving together cannot both run; a repeat is answered with the first answer's data and runs nothing.
    """
    command_id = body.get("command_id")
    if command_id is not None:
        seen = store.seen_command(key, command_id, now)
        if seen is not None:
            request.state.deduplicated = True  # read by the journal: answered from memory, nothing ran
            return _data(seen)
    outcome = run()
    if command_id is not None:
        store.remember_command(key, command_id, now, outcome.data)
    emulator_state(request).runtime.apply(outcome.effects)
    return _data(outcome.data)


async def call_action(request: Request) -> Response:
    return await _run_action(request, request.path_params["action"])


def _action_endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of an action with a route of its own."""

    async def endpoint(request: Request) -> Response:
        return await _run_action(request, name)

    return endpoint


async def _run_action(request: Request, name: str) -> Response:
    state = emulator_state(request)
    namespace = namespace_of(request)
    store = namespace.store
    call_control_id: str = request.path_params["call_control_id"]
    action = ACTIONS.get(name)
    if action is None:
        raise NotEmulated(name) if name in TELNYX_ACTIONS else NotFound(f"Unknown call action '{name}'.")
    if request.method != action.method:  # a POST to an action of its own route, which the route for all took
        raise MethodNotAllowed(request.method, allowed=(action.method,))
    dropped = await api_faults.inject(request, namespace, name, call_control_id)  # docs/faults.md
    body = await validated_body(request, action.schema)
    context = state.context(namespace, _base_url(request))
    _refuse_foreign(state, namespace, call_control_id)
    call = store.lookup(call_control_id, context.now, action.lenient_state)
    if dropped:  # accepted, as when the call hung up meanwhile, and never performed
        return _data({"result": "ok"})
    return _perform(request, store, call_control_id, body, context.now, lambda: action.run(context, store, call, body))


async def dial(request: Request) -> Response:
    state = emulator_state(request)
    namespace = namespace_of(request)
    store = namespace.store
    await api_faults.inject(request, namespace, "dial", None)  # docs/faults.md
    body = await validated_body(request, "dial")
    context = state.context(namespace, _base_url(request))

    def run() -> Outcome:
        to = (body["to"] if isinstance(body["to"], str) else body["to"][0]).partition(",")[0]  # ",200": digits
        scenario, callee = context.callee_for(to)
        return dial_linked(context, store, body, callee, scenario)[1]

    # Dial has no call yet: Telnyx ignores a repeated command_id on dial account-wide.
    return _perform(request, store, "", body, context.now, run)


def call_resource(call: Call) -> dict[str, Any]:
    """A call as ``GET /v2/calls/{call_control_id}`` shows it."""
    data: dict[str, Any] = {
        "record_type": "call",
        "call_control_id": call.call_control_id,
        "call_leg_id": call.call_leg_id,
        "call_session_id": call.call_session_id,
        "is_alive": call.is_alive,
    }
    if call.client_state is not None:
        data["client_state"] = call.client_state
    if call.start_time is not None:
        data["start_time"] = call.start_time
    if call.end_time is not None:
        data["end_time"] = call.end_time
    if len(call.history) > 1 and call.start_time is not None:
        answered = next((at for at, s in call.history if s == "answered"), None)
        ended = call.history[-1][0] if not call.is_alive else None
        if answered is not None and ended is not None:
            data["call_duration"] = round(ended - answered)
    return data


async def retrieve_call(request: Request) -> Response:
    state = emulator_state(request)
    namespace = namespace_of(request)
    call_control_id = request.path_params["call_control_id"]
    await api_faults.inject(request, namespace, "retrieve", call_control_id)  # docs/faults.md
    _refuse_foreign(state, namespace, call_control_id)
    call = namespace.store.lookup(call_control_id, state.clock.monotonic())
    return _data(call_resource(call))


def api_routes() -> list[Route]:
    return [
        Route("/v2/calls", dial, methods=["POST"]),
        Route("/v2/calls/{call_control_id}", retrieve_call, methods=["GET"]),
        # An action Telnyx takes with another method (client_state_update: PUT) has a route of its own, before
        # the route for all, so that a wrong method's 405 names the right one in its Allow header.
        *(
            Route(f"/v2/calls/{{call_control_id}}/actions/{name}", _action_endpoint(name), methods=[action.method])
            for name, action in ACTIONS.items()
            if action.method != "POST"
        ),
        Route("/v2/calls/{call_control_id}/actions/{action}", call_action, methods=["POST"]),
    ]


async def render_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.headers)


async def render_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) in Telnyx's envelope."""
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        error: ApiError = MethodNotAllowed(request.method)
    elif exc.status_code == 404:
        error = NotFound()
    else:
        error = ApiError(exc.status_code, [Problem("10015", "Bad Request", str(exc.detail), None)])
    return JSONResponse(error.to_json(), status_code=error.status, headers=headers)


async def render_unexpected(request: Request, exc: Exception) -> Response:
    error = internal_error()
    return JSONResponse(error.to_json(), status_code=error.status)
