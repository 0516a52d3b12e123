"""Call queues: enqueue and leave_queue, and everything else that takes a call out of its queue (pure).

``enqueue`` puts an answered call at the end of a named queue, made on first use, and sends ``call.enqueued``
with its position. The call keeps its media while it waits: its caller's script goes on, and speak, playback
and the rest still play to it (the emulator plays no hold music of its own). It leaves with ``call.dequeued``,
whose ``reason`` says how:

- ``leave``: ``leave_queue``, ``DELETE /v2/queues/{name}/calls/{id}``, or an ``enqueue`` into another queue;
- ``hangup``: the call ended (``on_end``, from ``call._end``), unless it was enqueued with ``keep_after_hangup``;
- ``timeout``: ``max_wait_time_secs`` of the call's media time passed (a timer, ``wait_over``);
- ``bridged``: a bridge took it from the head of the queue (``take_first``).

The calls behind it move up one place each (docs/queues.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.calls import events
from emulator.calls.actions.context import OK, CommandContext, ensure_media, note_client_state
from emulator.calls.effects import Cue, Effect, Emit, Outcome, StartTimer
from emulator.calls.models import Call
from emulator.calls.queues import DEFAULT_MAX_SIZE, QueuedCall, Queues, unseat
from emulator.calls.store import CallStore
from emulator.errors import already_in_queue, not_in_queue, queue_full

QUEUE_TIMEOUT = "queue_timeout"  # the Cue of max_wait_time_secs; its result is the seat's ticket


def enqueue(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """Put the call at the end of ``queue_name`` (made with ``max_size`` if new; an existing queue keeps its own).

    A call already waiting in another queue moves: it leaves that one first (``call.dequeued``, reason
    ``leave``). The same queue again is Telnyx's 90038, a full one its 90036, both before anything changes.
    """
    name = body["queue_name"]
    current = call.queued
    if current is not None and current.queue.name == name:
        raise already_in_queue(name)
    queue = store.queues.get(name)
    if queue is not None and queue.is_full:
        raise queue_full(name, queue.max_size)
    note_client_state(call, body)
    effects: list[Effect] = [*ensure_media(call)]  # a made-up call (lenient mode) needs media for its timer
    if current is not None:
        effects.append(_left(ctx, current, "leave"))
    if queue is None:
        max_size = int(body.get("max_size", DEFAULT_MAX_SIZE))
        queue = store.queues.create(name, max_size, ctx.ids.uuid4(), ctx.timestamp)
    average = queue.average_wait_time_secs(ctx.now)  # of the calls already waiting: 0 for the first
    keep = bool(body.get("keep_after_hangup", False))
    seat = store.queues.seat(queue, call, ctx.now, ctx.timestamp, keep_after_hangup=keep)
    effects.append(Emit(call, "call.enqueued", events.call_enqueued(call, name, seat.position, average)))
    if body.get("max_wait_time_secs") is not None:
        after_ms = int(body["max_wait_time_secs"]) * 1000  # 1e308 is a valid integer: no float product
        effects.append(StartTimer(call, after_ms, Cue(QUEUE_TIMEOUT, str(seat.ticket))))
    return Outcome(OK, tuple(effects))


def leave_queue(ctx: CommandContext, store: CallStore, call: Call, body: Mapping[str, Any]) -> Outcome:
    """The call leaves its queue (``call.dequeued``, reason ``leave``); its media goes on."""
    seat = call.queued
    if seat is None:
        raise not_in_queue()
    note_client_state(call, body)
    return Outcome(OK, (_left(ctx, seat, "leave"),))


def on_end(ctx: CommandContext, call: Call) -> tuple[Effect, ...]:
    """The call ended (``call._end``): it leaves its queue with reason ``hangup``. Enqueued with
    ``keep_after_hangup``, it stays there, no longer alive, until it is removed or a bridge takes it."""
    seat = call.queued
    if seat is None or seat.keep_after_hangup:
        return ()
    return (_left(ctx, seat, "hangup"),)


def wait_over(ctx: CommandContext, call: Call, cue: Cue) -> Outcome:
    """max_wait_time_secs passed (``reactions.cue_due``): the call leaves with reason ``timeout``, if it still
    waits in the stay that set the timer (not one it left, nor a later one)."""
    seat = call.queued
    if seat is None or str(seat.ticket) != cue.result:
        return Outcome(OK)
    return Outcome(OK, (_left(ctx, seat, "timeout"),))


def remove(ctx: CommandContext, seat: QueuedCall) -> tuple[Effect, ...]:
    """``DELETE /v2/queues/{name}/calls/{id}``: a live call leaves as by leave_queue (``call.dequeued``, reason
    ``leave``); an ended one kept after its hangup just goes, with no webhook (its call is over)."""
    if not seat.call.is_alive:
        unseat(seat)
        return ()
    return (_left(ctx, seat, "leave"),)


@dataclass(frozen=True, slots=True)
class Taken:
    """The call a bridge took from a queue, and the webhook its leaving sends (none for an ended call)."""

    call: Call
    effects: tuple[Effect, ...]


def take_first(ctx: CommandContext, queues: Queues, name: str, reason: str = "bridged") -> Taken | None:
    """Take the call at the head of queue ``name`` (for ``bridge`` with ``queue``); None if the queue does not
    exist or is empty.

    A live call leaves with ``call.dequeued`` (``reason``, ``bridged`` by default) in ``effects``; the calls
    behind it move up. A call that ended and was kept (``keep_after_hangup``) is taken too, with no webhook:
    ``taken.call.is_alive`` is False, and the bridge should fail, as Telnyx's does for such a call.
    """
    queue = queues.get(name)
    if queue is None or not queue.waiting:
        return None
    seat = queue.waiting[0]
    if not seat.call.is_alive:
        unseat(seat)
        return Taken(seat.call, ())
    return Taken(seat.call, (_left(ctx, seat, reason),))


def dequeue(ctx: CommandContext, call: Call, reason: str) -> tuple[Effect, ...]:
    """The call leaves the queue it waits in, if any (``call.dequeued`` with ``reason``): bridged by its id."""
    return (_left(ctx, call.queued, reason),) if call.queued is not None else ()


def _left(ctx: CommandContext, seat: QueuedCall, reason: str) -> Emit:
    """Take ``seat`` out of its queue: its ``call.dequeued``, with the place it had and how long it waited."""
    wait = seat.wait_time_secs(ctx.now)
    position = unseat(seat)
    call = seat.call
    return Emit(call, "call.dequeued", events.call_dequeued(call, seat.queue.name, position, wait, reason))
