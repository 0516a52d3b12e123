"""The namespace's event feed (``calls/feed.py``) and the pure hooks that publish on it: synchronous, no loop."""

from __future__ import annotations

import json

from emulator.calls.feed import Feed, FeedMessage, Subscription
from emulator.calls.ids import IdFactory
from emulator.calls.models import CallState, Direction
from emulator.calls.namespaces import Namespace, Namespaces
from emulator.calls.store import CallStore, transition
from emulator.faults.rules import FaultBook, Injected


class Waker:
    """A subscription's wake callable that counts its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def decoded(messages: list[FeedMessage]) -> list[tuple[int, str, object]]:
    return [(m.id, m.event, json.loads(m.data)) for m in messages]


def test_a_message_is_one_server_sent_event_with_its_data_on_one_line():
    message = FeedMessage(7, "call", json.dumps({"state": "answered", "note": "two\nlines"}, separators=(",", ":")))
    assert message.encode() == b'event: call\nid: 7\ndata: {"state":"answered","note":"two\\nlines"}\n\n'


def test_publishing_with_nobody_subscribed_does_nothing_and_numbers_nothing():
    feed = Feed()
    assert not feed.is_watched and feed.publish("call", {"state": "parked"}) is None
    subscription = feed.subscribe(Waker())
    assert feed.is_watched and feed.subscribers == 1
    assert feed.publish("call", {"state": "answered"}) == FeedMessage(1, "call", '{"state":"answered"}')
    assert decoded(subscription.take()) == [(1, "call", {"state": "answered"})]


def test_every_subscriber_gets_every_message_in_order_and_is_woken_for_each():
    feed = Feed()
    wakers = [Waker(), Waker()]
    subscriptions = [feed.subscribe(waker) for waker in wakers]
    feed.publish("call", {"n": 1})
    feed.publish("webhook", {"n": 2})
    for subscription, waker in zip(subscriptions, wakers, strict=True):
        assert decoded(subscription.take()) == [(1, "call", {"n": 1}), (2, "webhook", {"n": 2})]
        assert waker.count == 2 and subscription.take() == []  # taken: the mailbox is empty


def test_the_data_is_what_was_true_when_it_was_published():
    feed = Feed()
    subscription = feed.subscribe(Waker())
    data = {"state": "parked"}
    feed.publish("call", data)
    data["state"] = "answered"
    assert json.loads(subscription.take()[0].data) == {"state": "parked"}


def test_a_subscriber_more_than_backlog_behind_gets_lost_and_is_dropped_while_the_others_go_on():
    feed = Feed(backlog=3)
    slow, fast = feed.subscribe(Waker()), feed.subscribe(Waker())
    for n in range(1, 4):
        feed.publish("command", {"n": n})
        fast.take()
    assert slow.ended is None
    feed.publish("command", {"n": 4})  # the fourth waiting message: one too many
    assert slow.ended == "lost" and slow.is_ended and feed.subscribers == 1
    messages = decoded(slow.take())
    assert [m[:2] for m in messages] == [(1, "command"), (2, "command"), (3, "command"), (4, "lost")]
    assert messages[-1][2] == {
        "reason": "more than 3 messages were waiting to be read",
        "backlog": 3,
        "first_missed_id": 4,
    }
    assert decoded(fast.take()) == [(4, "command", {"n": 4})]
    feed.publish("command", {"n": 5})
    assert slow.take() == [] and [m.id for m in fast.take()] == [5]  # the dropped one gets nothing more


def test_unsubscribing_ends_the_subscription_and_wakes_its_reader():
    feed = Feed()
    waker = Waker()
    subscription = feed.subscribe(waker)
    feed.unsubscribe(subscription)
    assert subscription.ended == "gone" and waker.count == 1 and not feed.is_watched
    feed.unsubscribe(subscription)  # twice is harmless: the reader and its disconnect watch both do it
    assert subscription.ended == "gone" and waker.count == 1


def test_closing_ends_every_subscription_and_any_made_later():
    feed = Feed()
    waker = Waker()
    open_one = feed.subscribe(waker)
    feed.close()
    assert open_one.ended == "closed" and waker.count == 1 and not feed.is_watched
    late: Subscription = feed.subscribe(Waker())
    assert late.ended == "closed" and feed.publish("call", {}) is None


# -- the pure hooks ------------------------------------------------------------------------------


def changes(calls: list):
    return lambda call: calls.append((call.call_control_id, call.state))


def test_the_store_tells_its_observer_of_each_call_created_and_each_state_change():
    store = CallStore(IdFactory(1))
    seen: list = []
    store.observer = changes(seen)
    call = store.create(
        direction=Direction.INCOMING, state=CallState.PARKED, from_="+1", to="+2", connection_id="c", now=0.0
    )
    transition(call, CallState.ANSWERED, 1.0)
    store.clear(2.0)  # a reset ends the live calls: they end for the feed too
    assert seen == [(call.call_control_id, s) for s in (CallState.PARKED, CallState.ANSWERED, CallState.ENDED)]


def test_the_fault_book_tells_its_observer_of_each_fault_injected():
    book = FaultBook.seeded(1)
    seen: list[Injected] = []
    book.observer = seen.append
    rule = book.add({"target": "api", "kind": "status", "status": 503})
    injected = book.note(rule, "2026-01-01T00:00:00Z", "v3:x", "hangup answered 503")
    assert seen == [injected]


def test_a_reset_is_published_after_the_calls_it_ends():
    namespaces = Namespaces(seed=1)
    namespace = namespaces.get("key")
    subscription = namespace.feed.subscribe(Waker())
    seen: list = []
    namespace.store.observer = changes(seen)
    namespace.store.create(
        direction=Direction.INCOMING, state=CallState.PARKED, from_="+1", to="+2", connection_id="c", now=0.0
    )
    namespace.reset(1.0)
    assert seen[-1][1] is CallState.ENDED
    assert decoded(subscription.take()) == [(1, "reset", {"calls": 1, "streams_stopped": 0, "seed": 1})]


def test_each_new_namespace_is_watched_and_closing_the_feeds_reaches_those_made_later():
    watched: list[Namespace] = []
    namespaces = Namespaces(watch=watched.append)
    first = namespaces.get("a")
    namespaces.get("a")
    assert watched == [first]
    subscription = first.feed.subscribe(Waker())
    namespaces.close_feeds()
    assert subscription.ended == "closed"
    assert namespaces.get("b").feed.subscribe(Waker()).ended == "closed" and len(watched) == 2
