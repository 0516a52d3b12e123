"""The control plane's fault rules (docs/faults.md): ``/_emulator/faults``, per API key namespace.

``GET`` lists the rules (with how often each matched and fired), ``POST`` adds one, ``DELETE`` removes one
or all; ``GET /_emulator/faults/injected`` lists the faults injected so far, the latest last.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.routes import namespace_of, validated_body
from emulator.calls.actions import ACTIONS
from emulator.errors import NotFound, ValidationFailed


async def faults(request: Request) -> Response:
    book = namespace_of(request).faults
    if request.method == "POST":
        body = await validated_body(request, "fault_rule")
        action = body.get("action")
        if action is not None and action not in ACTIONS and action not in ("dial", "retrieve"):
            detail = f"No command is named {action!r}: an action's name (speak, answer, ...), dial or retrieve."
            raise ValidationFailed.at("/action", "Invalid parameter", detail)
        rule = book.add(body)
        return JSONResponse({"data": rule.as_json()}, status_code=201)
    if request.method == "DELETE":
        return JSONResponse({"data": {"deleted": book.clear_rules()}})
    book.sync()  # a scenario's rules are listed once the scenario is loaded
    return JSONResponse({"data": [rule.as_json() for rule in book.rules]})


async def fault(request: Request) -> Response:
    rule = namespace_of(request).faults.remove(request.path_params["rule_id"])
    if rule is None:
        raise NotFound("No fault rule with this id.")
    return JSONResponse({"data": rule.as_json()})


async def injected(request: Request) -> Response:
    return JSONResponse({"data": [item.as_json() for item in namespace_of(request).faults.injected]})


def fault_routes() -> list[Route]:
    return [
        Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/faults/injected", injected, methods=["GET"]),
        Route("/_emulator/faults/{rule_id}", fault, methods=["DELETE"]),
    ]
