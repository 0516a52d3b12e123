"""Calls with two legs: bridge, transfer, and a dialed leg bridged when it answers (pure).

A bridge joins two live calls: ``call.bridged`` on each, and from the next tick each leg's far end hears the
other's (``Connect`` both ways; ``media/bridge.py``), so their streams and recordings carry it. When one leg
leaves the bridge (it hangs up, or is bridged elsewhere), the other does what its bridge said: hang up
(Telnyx's default), stay parked (``park_after_unbridge: self``) or on hold (``hold_after_unbridge``)
(``call.leave_bridge``). ``transfer`` dials a new leg whose far end is the scenario of the number it calls,
and bridges it to the call once it answers; if it does not, its ``call.hangup`` says why and the call goes on.
docs/bridging.md tells the whole story.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emulator.calls.actions import queueing
from emulator.calls.actions.call import ANSWER_OPTIONS, callee_answers, dial, end_call, leave_bridge, record_from_now
from emulator.calls.actions.context import OK, CommandContext, ensure_media, note_client_state, start_media
from emulator.calls.effects import Connect, Disconnect, Effect, Emit, Outcome
from emulator.calls.events import call_payload
from emulator.calls.models import Call, CallState, Unbridge
from emulator.calls.store import CallStore, require_answered, transition
from emulator.errors import CallError, ValidationFailed
from emulator.scenarios.loader import Callee

# transfer's fields that a dialed call takes as they are: what acts at the answer, the ring timeout, the URL.
_DIALED_FIELDS = (*ANSWER_OPTIONS, "timeout_secs", "webhook_url")


def unbridge_behaviour(body: Mapping[str, Any]) -> Unbridge:
    if body.get("hold_after_unbridge"):
        return Unbridge.HOLD
    if body.get("park_after_unbridge") == "self":
        return Unbridge.PARK
    return Unbridge.HANGUP


def bridge(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Join ``call`` with the call ``body.call_control_id`` names, or the first call waiting in ``body.queue``:
    both hear each other from the next tick."""
    if call.state is CallState.BRIDGING:  # a call the app dialed that has not answered yet
        require_answered(call)
    if body.get("video_room_id"):
        raise ValidationFailed.at("/video_room_id", "Not emulated", "The emulator has no video rooms to bridge with.")
    if "call_control_id" in body and "queue" in body:
        raise ValidationFailed.at("/queue", "Invalid parameters", "Give call_control_id or queue, not both.")
    effects: list[Effect] = []
    if "queue" in body:  # the call at the head of the queue: it leaves the queue once the bridge is sure
        queue = store.queues.get(body["queue"])
        if queue is None or not queue.waiting:
            raise ValidationFailed.at("/queue", "Queue is empty", f"No call is waiting in the '{body['queue']}' queue.")
        other, pointer = queue.waiting[0].call, "/queue"
        if not other.is_alive:  # kept after its hangup (keep_after_hangup): it goes, and the bridge fails
            queueing.take_first(ctx, store.queues, body["queue"])
    elif "call_control_id" in body:
        other, pointer = store.lookup(body["call_control_id"], ctx.now), "/call_control_id"
    else:
        detail = "The 'call_control_id' parameter is required (or 'queue')."
        raise ValidationFailed.at("/call_control_id", "Missing required parameter", detail, "10004")
    if other is call:
        raise ValidationFailed.at(pointer, "Invalid value", "A call cannot be bridged with itself.")
    if not other.is_alive:
        raise CallError("90018", "Call has already ended", "The call to bridge with has already ended.", pointer)
    promised = other.bridge_on_answer is not None and other.bridge_on_answer is not call
    if other.state is CallState.BRIDGING and (promised or other.supervising is not None):
        detail = "The call to bridge with is ringing to join another call (a transfer, link_to or supervision)."
        raise ValidationFailed.at(pointer, "Already bridging", detail)
    if body.get("prevent_double_bridge") and other.bridged_to is not None and other.bridged_to is not call:
        raise ValidationFailed.at(pointer, "Already bridged", "The call to bridge with is bridged to another call.")
    if "queue" in body:
        taken = queueing.take_first(ctx, store.queues, body["queue"])
        effects.extend(taken.effects if taken is not None else ())
    note_client_state(call, body)
    call.unbridge = unbridge_behaviour(body)
    if other.state is CallState.BRIDGING:  # still ringing: the bridge happens when it answers
        other.bridge_on_answer = call
        return Outcome(OK, tuple(effects))
    effects.extend(join(ctx, call, other))
    if body.get("record") == "record-from-answer":
        effects.append(record_from_now(ctx, call, body))
    return Outcome(OK, tuple(effects))


def join(ctx: CommandContext, a: Call, b: Call) -> list[Effect]:
    """Bridge ``a`` and ``b``: each leaves any bridge it is in, a leg still parked is answered (its caller is
    connected), ``call.bridged`` on both, and from the next tick each far end hears the other."""
    effects: list[Effect] = []
    for leg in (a, b):
        effects.extend(queueing.dequeue(ctx, leg, "bridged"))  # a waiting call bridged by its id leaves its queue
        if leg.bridged_to is not None and leg.bridged_to not in (a, b):
            effects.extend(leave_bridge(ctx, leg))
        if leg.state is CallState.PARKED:  # an incoming call bridged without `answer`: connected now
            transition(leg, CallState.ANSWERED, ctx.now)
            leg.start_time = ctx.timestamp
            effects.append(start_media(leg))
        elif leg.state is CallState.ANSWERED:  # a made-up call (lenient mode) gets its media now
            effects.extend(ensure_media(leg))
    if not (a.is_alive and b.is_alive):  # leaving a bridge hung one of them up
        return effects
    a.bridged_to, b.bridged_to = b, a
    a.bridges += 1
    b.bridges += 1
    effects.extend(
        (
            Emit(a, "call.bridged", call_payload(a)),
            Emit(b, "call.bridged", call_payload(b)),
            Connect(a, b),
            Connect(b, a),
        )
    )
    return effects


def transfer(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Dial ``body.to`` for ``call``: ``call.initiated`` for the new leg now, then its ``call.answered`` and
    ``call.bridged`` on both legs once its far end answers (or its ``call.hangup``: busy, rejected, timeout)."""
    if call.state is CallState.BRIDGING:
        require_answered(call)
    scenario, callee = ctx.callee_for(body["to"].partition(",")[0])  # ",200": digits sent on answer
    note_client_state(call, body)
    call.unbridge = unbridge_behaviour(body)
    effects: list[Effect] = []
    ringing = call.transferring
    if ringing is not None and ringing.state is CallState.BRIDGING:  # a second transfer replaces the first
        effects.extend(end_call(ctx, ringing, cause="originator_cancel", source="caller"))
    dialed = {key: body[key] for key in _DIALED_FIELDS if key in body}
    dialed |= {"to": body["to"], "from": body.get("from") or call.to, "connection_id": call.connection_id}
    if body.get("target_leg_client_state") is not None:
        dialed["client_state"] = body["target_leg_client_state"]
    leg, outcome = dial(ctx, store, dialed, callee, scenario, session=call)
    leg.webhook_url = leg.webhook_url or call.webhook_url  # read when its webhooks leave, after this returns
    leg.bridge_on_answer, call.transferring = call, leg
    return Outcome(OK, (*effects, *outcome.effects))


def leg_answers(ctx: CommandContext, call: Call, callee: Callee) -> Outcome:
    """A dialed leg's far end answers: what its dial asked for at the answer, then the bridge it was dialed for
    (transfer, dial's bridge_on_answer) if its other leg is still there."""
    answered = callee_answers(ctx, call, callee)
    if call.supervising is not None and call.state is CallState.ANSWERED:
        return Outcome(OK, (*answered.effects, *supervise(call)))
    waiting, call.bridge_on_answer = call.bridge_on_answer, None
    if waiting is None or call.state is not CallState.ANSWERED:
        return answered
    if waiting.transferring is call:
        waiting.transferring = None
    if waiting.state is CallState.BRIDGING:  # the call to join still rings itself: the bridge waits for its answer
        waiting.bridge_on_answer = waiting.bridge_on_answer or call
        return answered
    if not waiting.is_alive:  # the call it was to join hung up while it rang
        return Outcome(OK, (*answered.effects, *end_call(ctx, call, cause="normal_clearing", source="unknown")))
    if call.prevent_double_bridge and waiting.bridged_to is not None:
        # dial's prevent_double_bridge: "hangs up the call if the target is already bridged"
        return Outcome(OK, (*answered.effects, *end_call(ctx, call, cause="normal_clearing", source="unknown")))
    return Outcome(OK, (*answered.effects, *join(ctx, waiting, call)))


def _lookup(store: CallStore, body: Mapping[str, Any], field: str, now: float) -> Call | None:
    """The call a dial field names (None without one); unknown with --strict-calls: 90015 at that field."""
    if not body.get(field):
        return None
    try:
        return store.lookup(body[field], now)
    except CallError as exc:
        problem = exc.problems[0]
        raise CallError(problem.code, problem.title, problem.detail, f"/{field}") from None


def dial_linked(
    ctx: CommandContext, store: CallStore, body: Mapping[str, Any], callee: Callee, scenario: str | None
) -> tuple[Call, Outcome]:
    """``POST /v2/calls``, with ``link_to``: the new call shares the linked call's session, takes its caller id
    with ``bridge_intent``, and is bridged to it when it answers with ``bridge_on_answer``."""
    linked = _lookup(store, body, "link_to", ctx.now)
    if linked is not None and not linked.is_alive:
        raise CallError("90018", "Call has already ended", "The call in link_to has already ended.", "/link_to")
    supervised = _lookup(store, body, "supervise_call_control_id", ctx.now)
    if supervised is not None and not supervised.is_alive:
        detail = "The call to supervise has already ended."
        raise CallError("90018", "Call has already ended", detail, "/supervise_call_control_id")
    if linked is not None and body.get("bridge_intent"):
        body = {**body, "from": linked.from_}
    call, outcome = dial(ctx, store, body, callee, scenario, session=linked or supervised)
    if supervised is not None:
        call.supervising, call.supervisor_role = supervised, body.get("supervisor_role", "barge")
    if linked is None:
        return call, outcome
    if body.get("bridge_on_answer"):
        call.bridge_on_answer = linked
    call.unbridge = unbridge_behaviour(body)
    call.prevent_double_bridge = bool(body.get("prevent_double_bridge"))
    return call, outcome


# Who hears a supervisor, by its role (Telnyx's supervisor_role): barge, both legs; whisper, the supervised call
# only; monitor, nobody. A supervisor always hears both legs.
def _heard_by(role: str, legs: tuple[Call, ...]) -> tuple[Call, ...]:
    return legs if role == "barge" else legs[:1] if role == "whisper" else ()


def supervise(supervisor: Call) -> list[Effect]:
    """The supervisor answered: it hears the supervised call and the leg bridged to it, and is heard as its
    role says."""
    target = supervisor.supervising
    assert target is not None
    if target.state is not CallState.ANSWERED:  # it ended, or is not connected yet: there is nothing to hear
        return []
    legs = (target, target.bridged_to) if target.bridged_to is not None else (target,)
    supervisor.supervised = tuple(leg for leg in legs if leg.state is CallState.ANSWERED)
    for leg in supervisor.supervised:
        leg.supervisors.append(supervisor)
    effects: list[Effect] = [*ensure_media(target), *(Connect(leg, supervisor) for leg in supervisor.supervised)]
    effects.extend(
        Connect(supervisor, leg) for leg in _heard_by(supervisor.supervisor_role or "barge", supervisor.supervised)
    )
    return effects


def switch_role(supervisor: Call, role: str) -> list[Effect]:
    """switch_supervisor_role: who hears the supervisor changes now; it still hears both legs."""
    before = _heard_by(supervisor.supervisor_role or "barge", supervisor.supervised)
    supervisor.supervisor_role = role
    after = _heard_by(role, supervisor.supervised)
    effects: list[Effect] = [Disconnect(supervisor, leg) for leg in before if leg not in after]
    effects.extend(Connect(supervisor, leg) for leg in after if leg not in before)
    return effects


def switch_supervisor_role(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """The supervisor's role from now on: who hears it changes at the next tick; no webhook (Telnyx's body has no
    client_state). On a call that supervises nothing, the role is only kept, for a later supervision."""
    return Outcome(OK, tuple(switch_role(call, body["role"])))


def enqueue(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """``enqueue`` (queueing.enqueue), and a call in a bridge leaves it first, as Telnyx's docs say: the other
    leg does what its bridge said."""
    queued = queueing.enqueue(ctx, store, call, body)
    if call.bridged_to is None:
        return queued
    return Outcome(queued.data, (*leave_bridge(ctx, call), *queued.effects))
