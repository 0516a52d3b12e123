"""The far end of a call, driven live: ``POST /_emulator/calls/{call_control_id}/caller``.

A test (or a person at ``telnyx-emulator call --follow``, or ``telnyx-emulator load`` for a call the app never
answers) makes the caller act now, whatever its scenario says, one action per request:

* ``{"dtmf": "12#"}``, ``{"say": "text"}``, ``{"play": "file-or-url"}``, ``{"silence_ms": 500}``: once the call is
  answered, the caller plays it as its scenario's step would (``media/live_audio.py``), after the live steps
  given before it, its scenario paused meanwhile (``scenarios/cursor.py``). The answer comes once it is queued:
  where it starts on the call's media timeline (``at_ms``) and how long it lasts.
* ``{"hangup": true}``: the caller of a ringing incoming call gives up (``originator_cancel``), the callee of a
  ringing dialed call refuses it (``call_rejected``), and either hangs up an answered call (``normal_clearing``),
  with ``call.hangup`` sent as when its scenario hangs up: at once, or after the live steps still queued.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api.routes import emulator_state, namespace_of, validated_body
from emulator.calls.actions.call import caller_hangs_up
from emulator.calls.models import Call, CallState
from emulator.calls.namespaces import Namespace
from emulator.calls.store import require_alive
from emulator.errors import CallError, NotFound, ValidationFailed
from emulator.media.library import LiveBudgetSpent
from emulator.media.live_audio import LiveAudioError, live_step
from emulator.state import EmulatorState
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
    body = await validated_body(request, "caller_action")
    require_alive(call)
    ((action, value),) = body.items()  # the schema allows exactly one
    _require_caller(state, call, action)
    if action == "hangup":
        at_ms = _hang_up(state, namespace, call)
        return _answer(call, action, at_ms, 0)
    if call.state is not CallState.ANSWERED:
        raise CallError(
            "90034",
            "Call has not been answered yet",
            "The caller plays dtmf, say, play and silence_ms once the call is answered; before that it can only "
            'hang up ({"hangup": true}).',
            f"/{action}",
        )
    try:
        step = await live_step(action, value, http=state.http, scenario_dir=state.settings.scenario_dir)
    except LiveAudioError as exc:
        raise ValidationFailed.at(f"/{action}", "Audio not available", str(exc)) from None
    require_alive(call)  # the call may have ended while its audio was being made
    _require_caller(state, call, action)
    try:
        placed = state.runtime.media.caller_plays(call, step)
    except LiveBudgetSpent as exc:
        raise ValidationFailed.at(f"/{action}", "Too much live audio", str(exc).capitalize() + ".") from None
    if placed is None:  # no media: a call the app made up (lenient) has none before its first streaming_start
        raise CallError(
            "90034",
            "Call has no media yet",
            "The caller of this call has not started: a call_control_id the app made up starts its caller with its "
            "first streaming_start.",
            f"/{action}",
        )
    return _answer(call, action, *placed)


def _require_caller(state: EmulatorState, call: Call, action: str) -> None:
    if state.runtime.media.caller_gone(call):
        detail = "The caller has hung up, or will once its queued live steps have played: it does nothing more."
        raise CallError("90018", "Caller has hung up", detail, f"/{action}")


def _hang_up(state: EmulatorState, namespace: Namespace, call: Call) -> int:
    """The far end hangs up: after the live steps still queued, if any, else now. Returns where, in ms."""
    media = state.runtime.media
    if call.state is CallState.ANSWERED and media.caller_is_live(call):
        placed = media.caller_plays(call, None)
        if placed is not None:
            return placed[0]
    at_ms = call.meter.ticks * FRAME_MS if call.meter is not None else 0  # where on the call's media timeline
    outcome = caller_hangs_up(state.context(namespace), call, HANGUP_CAUSES[call.state])
    state.runtime.apply(outcome.effects)
    return at_ms


def _answer(call: Call, action: str, at_ms: int, duration_ms: int) -> JSONResponse:
    data: dict[str, Any] = {"call_control_id": call.call_control_id, "action": action}
    data |= {"at_ms": at_ms, "duration_ms": duration_ms}
    return JSONResponse({"data": data})


def caller_routes() -> list[Route]:
    return [Route("/_emulator/calls/{call_control_id}/caller", caller_action, methods=["POST"])]
