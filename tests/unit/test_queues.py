"""Call queues without a server: the store (positions, max_size, waits) and the pure handlers (enqueue,
leave_queue, the hangup hook, the max_wait_time_secs timer, take_first, force removal)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emulator.calls import reactions
from emulator.calls.actions import ACTIONS, call as call_actions, queueing
from emulator.calls.actions.context import CommandContext
from emulator.calls.effects import Cue, Emit, StartMedia, StartTimer
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState
from emulator.calls.queues import Queues
from emulator.calls.store import CallStore
from emulator.errors import ApiError


def setup():
    ids = IdFactory(seed=1)
    store = CallStore(ids)
    ctx = CommandContext(ids=ids, user_id="user", call_codec="PCMU", scenario="default", now=100.0, timestamp="T0")
    return ctx, store


def answered(store, name):
    call = store.lookup(name, now=0)
    call.has_media = True  # answered with its media running, as after a real answer
    return call


def emitted(outcome, event_type="call.dequeued"):
    return [e.payload for e in outcome.effects if isinstance(e, Emit) and e.event_type == event_type]


def enqueue(ctx, store, call, **body):
    return ACTIONS["enqueue"].run(ctx, store, call, {"queue_name": "support", **body})


def test_the_first_enqueue_makes_the_queue_and_each_call_joins_at_the_end():
    ctx, store = setup()
    first, second = answered(store, "v3:a"), answered(store, "v3:b")
    one = enqueue(ctx, store, first, client_state="b25l")
    two = enqueue(replace(ctx, now=104.0), store, second, max_size=1)  # an existing queue keeps its max_size
    assert one.data == {"result": "ok"}
    [joined] = emitted(one, "call.enqueued")
    assert joined["queue"] == "support" and joined["current_position"] == 1 and joined["client_state"] == "b25l"
    assert joined["queue_avg_wait_time_secs"] == 0
    [behind] = emitted(two, "call.enqueued")
    assert behind["current_position"] == 2 and behind["queue_avg_wait_time_secs"] == 4  # the first waited 4 s
    queue = store.queues.get("support")
    assert queue is not None and queue.max_size == 100 and len(queue.id) == 36
    assert [seat.call for seat in queue.waiting] == [first, second]
    assert first.queued is not None and first.queued.position == 1 and second.queued.position == 2


def test_when_one_leaves_the_calls_behind_move_up():
    ctx, store = setup()
    calls = [answered(store, f"v3:{n}") for n in "abc"]
    for call in calls:
        enqueue(ctx, store, call)
    left = ACTIONS["leave_queue"].run(replace(ctx, now=107.4), store, calls[1], {"client_state": "Ynll"})
    [dequeued] = emitted(left)
    assert dequeued["reason"] == "leave" and dequeued["queue_position"] == 2 and dequeued["wait_time_secs"] == 7
    assert dequeued["client_state"] == "Ynll"
    assert calls[1].queued is None
    assert [call.queued.position for call in (calls[0], calls[2])] == [1, 2]
    assert calls[1].state is CallState.ANSWERED  # leaving the queue does not end the call


def test_a_full_queue_refuses_with_90036_and_changes_nothing():
    ctx, store = setup()
    first, second = answered(store, "v3:a"), answered(store, "v3:b")
    enqueue(ctx, store, first, max_size=1)
    with pytest.raises(ApiError) as info:
        enqueue(ctx, store, second, client_state="bm8=")
    problem = info.value.problems[0]
    assert info.value.status == 422 and problem.code == "90036" and problem.title == "Queue full"
    assert second.queued is None and second.client_state is None
    ACTIONS["leave_queue"].run(ctx, store, first, {})
    assert emitted(enqueue(ctx, store, second), "call.enqueued")[0]["current_position"] == 1


def test_the_same_queue_again_is_90038_and_another_queue_moves_the_call():
    ctx, store = setup()
    call = answered(store, "v3:a")
    enqueue(ctx, store, call)
    with pytest.raises(ApiError) as info:
        enqueue(ctx, store, call)
    assert info.value.problems[0].code == "90038"
    moved = ACTIONS["enqueue"].run(ctx, store, call, {"queue_name": "sales"})
    assert [e.event_type for e in moved.effects] == ["call.dequeued", "call.enqueued"]
    assert emitted(moved)[0]["queue"] == "support" and emitted(moved)[0]["reason"] == "leave"
    assert call.queued is not None and call.queued.queue.name == "sales"
    assert store.queues.get("support").waiting == []  # the queue it left is kept, empty


def test_leave_queue_outside_a_queue_and_enqueue_before_the_answer_are_refused():
    ctx, store = setup()
    call = answered(store, "v3:a")
    with pytest.raises(ApiError) as info:
        ACTIONS["leave_queue"].run(ctx, store, call, {})
    assert info.value.problems[0].code == "10015" and info.value.problems[0].title == "Call not in queue"
    ringing = store.lookup("v3:r", now=0, lenient_state=CallState.PARKED)
    with pytest.raises(ApiError) as info:
        enqueue(ctx, store, ringing)
    assert info.value.problems[0].code == "90034"


def test_a_made_up_call_starts_its_media_before_its_timer():
    ctx, store = setup()
    call = store.lookup("v3:lenient", now=0)  # lenient mode: answered, no media yet
    outcome = enqueue(ctx, store, call, max_wait_time_secs=30)
    assert isinstance(outcome.effects[0], StartMedia) and isinstance(outcome.effects[-1], StartTimer)


def test_max_wait_time_secs_sets_a_timer_whose_cue_dequeues_with_timeout():
    ctx, store = setup()
    call = answered(store, "v3:a")
    outcome = enqueue(ctx, store, call, max_wait_time_secs=5)
    timer = outcome.effects[-1]
    assert isinstance(timer, StartTimer) and timer.call is call and timer.after_ms == 5000
    assert timer.cue.what == queueing.QUEUE_TIMEOUT
    done = reactions.cue_due(replace(ctx, now=105.0), call, timer.cue)
    [dequeued] = emitted(done)
    assert dequeued["reason"] == "timeout" and dequeued["wait_time_secs"] == 5 and call.queued is None
    assert call.state is CallState.ANSWERED  # out of the queue, still on the line


def test_a_timer_from_an_earlier_stay_does_nothing():
    ctx, store = setup()
    call = answered(store, "v3:a")
    stale = enqueue(ctx, store, call, max_wait_time_secs=5).effects[-1].cue
    ACTIONS["leave_queue"].run(ctx, store, call, {})
    assert reactions.cue_due(ctx, call, stale).effects == ()  # it left
    enqueue(ctx, store, call)
    assert reactions.cue_due(ctx, call, stale).effects == ()  # it came back: a new stay, no timer
    assert call.queued is not None


def test_hanging_up_while_queued_sends_call_dequeued_with_hangup_after_call_hangup():
    ctx, store = setup()
    first, second = answered(store, "v3:a"), answered(store, "v3:b")
    enqueue(ctx, store, first)
    enqueue(ctx, store, second)
    ended = call_actions.caller_hangs_up(replace(ctx, now=103.0), first, "normal_clearing")
    kinds = [e.event_type for e in ended.effects if isinstance(e, Emit)]
    assert kinds.index("call.hangup") < kinds.index("call.dequeued")
    [dequeued] = emitted(ended)
    assert dequeued["reason"] == "hangup" and dequeued["queue_position"] == 1 and dequeued["wait_time_secs"] == 3
    assert first.queued is None and second.queued.position == 1


def test_keep_after_hangup_keeps_the_ended_call_in_its_place():
    ctx, store = setup()
    kept, behind = answered(store, "v3:a"), answered(store, "v3:b")
    enqueue(ctx, store, kept, keep_after_hangup=True)
    enqueue(ctx, store, behind)
    ended = ACTIONS["hangup"].run(ctx, store, kept, {})
    assert emitted(ended) == []
    assert kept.queued is not None and kept.queued.position == 1 and not kept.is_alive
    assert queueing.remove(ctx, kept.queued) == ()  # removed by force: no webhook about an ended call
    assert kept.queued is None and behind.queued.position == 1


def test_take_first_removes_the_head_for_a_bridge_and_reports_it_bridged():
    ctx, store = setup()
    first, second = answered(store, "v3:a"), answered(store, "v3:b")
    enqueue(ctx, store, first)
    enqueue(ctx, store, second)
    taken = queueing.take_first(replace(ctx, now=112.0), store.queues, "support")
    assert taken is not None and taken.call is first
    [dequeued] = [e.payload for e in taken.effects]
    assert dequeued["reason"] == "bridged" and dequeued["queue_position"] == 1 and dequeued["wait_time_secs"] == 12
    assert first.queued is None and second.queued.position == 1
    assert queueing.take_first(ctx, store.queues, "nobody") is None
    queueing.take_first(ctx, store.queues, "support")
    assert queueing.take_first(ctx, store.queues, "support") is None  # empty now


def test_take_first_hands_over_an_ended_kept_call_without_a_webhook():
    ctx, store = setup()
    kept = answered(store, "v3:a")
    enqueue(ctx, store, kept, keep_after_hangup=True)
    ACTIONS["hangup"].run(ctx, store, kept, {})
    taken = queueing.take_first(ctx, store.queues, "support")
    assert taken is not None and taken.call is kept and not taken.call.is_alive and taken.effects == ()
    assert store.queues.get("support").waiting == []


def test_force_removal_of_a_live_call_is_a_leave():
    ctx, store = setup()
    call = answered(store, "v3:a")
    enqueue(ctx, store, call)
    [effect] = queueing.remove(ctx, call.queued)
    assert isinstance(effect, Emit) and effect.payload["reason"] == "leave" and call.queued is None


def test_the_queue_reports_the_average_wait_of_the_calls_waiting_now():
    queues = Queues()
    ids = IdFactory(seed=2)
    store = CallStore(ids)
    queue = queues.create("q", 5, "id", "T")
    assert queue.average_wait_time_secs(50.0) == 0
    for at, name in ((10.0, "v3:a"), (20.0, "v3:b")):
        queues.seat(queue, store.lookup(name, now=0), at, "T", keep_after_hangup=False)
    assert queue.average_wait_time_secs(30.0) == 15 and queue.waiting[1].wait_time_secs(30.0) == 10
    assert [seat.ticket for seat in queue.waiting] == [1, 2]
    assert not queue.is_full


def test_clearing_the_store_forgets_its_queues_and_the_calls_seats():
    ctx, store = setup()
    call = answered(store, "v3:a")
    enqueue(ctx, store, call)
    store.clear(now=200.0)
    assert len(store.queues) == 0 and call.queued is None


def test_a_queued_call_and_its_queue_have_a_finite_repr():
    ctx, store = setup()
    call = answered(store, "v3:a")
    enqueue(ctx, store, call)
    assert "support" in repr(store.queues.get("support")) and "v3:a" in repr(call.queued)


def test_a_cue_of_the_time_limit_is_not_taken_for_a_queue_timeout():
    ctx, store = setup()
    call = answered(store, "v3:a")
    enqueue(ctx, store, call)
    ended = reactions.cue_due(ctx, call, Cue("time_limit"))
    assert [e.payload["reason"] for e in ended.effects if isinstance(e, Emit) and e.event_type == "call.dequeued"] == [
        "hangup"
    ]


def test_a_huge_max_wait_time_secs_is_whole_milliseconds_not_an_overflow():
    ctx, store = setup()
    timer = enqueue(ctx, store, answered(store, "v3:a"), max_wait_time_secs=1e308).effects[-1]
    assert isinstance(timer, StartTimer) and timer.after_ms == int(1e308) * 1000
