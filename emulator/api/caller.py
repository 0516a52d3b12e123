"""The far end of a call, driven live: ``POST /_emulator/calls/{call_control_id}/caller``.

A test (or ``telnyx-emulator load``, for a call the app never answers) makes the caller act now, whatever its
scenario says. It takes one action, ``{"hangup": true}``: the caller of a ringing incoming call gives up
(``originator_cancel``), the callee of a ringing dialed call refuses it (``call_rejected``), and either hangs up
an answered call (``normal_clearing``), with ``call.hangup`` sent as when its scenario hangs up.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.routes import emulator_state, namespace_of, validated_body
from emulator.calls.actions.call import caller_hangs_up
from emulator.calls.models import CallState
from emulator.calls.store import require_alive
from emulator.errors import NotFound
from emulator.timing import FRAME_MS

# Why the far end's hangup ends the call, by the call's state when it hangs up.
HANGUP_CAUSES = {
    CallState.PARKED: "originator_cancel",
    CallState.BRIDGING: "call_rejected",
    CallState.ANSWERED: "normal_clearing",
}


async def caller_action(request: Request) -> Response:
    state = emulator_state(request)
    namespace = namespace_of(request)
    call = namespace.store.calls.get(request.path_params["call_control_id"])
    if call is None:
        raise NotFound("No call with this call_control_id.")
    await validated_body(request, "caller_action")
    require_alive(call)
    at_ms = call.meter.ticks * FRAME_MS if call.meter is not None else 0  # where on the call's media timeline
    outcome = caller_hangs_up(state.context(namespace), call, HANGUP_CAUSES[call.state])
    state.runtime.apply(outcome.effects)
    data = {"call_control_id": call.call_control_id, "action": "hangup", "at_ms": at_ms}
    return JSONResponse({"data": data})


def caller_routes() -> list[Route]:
    return [Route("/_emulator/calls/{call_control_id}/caller", caller_action, methods=["POST"])]
