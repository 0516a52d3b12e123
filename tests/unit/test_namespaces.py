from __future__ import annotations

from emulator.calls.actions.context import CommandContext
from emulator.calls.actions.streaming import open_stream
from emulator.calls.models import CallState, Direction, StreamState
from emulator.calls.namespaces import Namespaces, namespace_seed


def dial(namespaces: Namespaces, key: str, state: CallState = CallState.ANSWERED):
    store = namespaces.get(key).store
    return store.create(direction=Direction.OUTGOING, state=state, from_="+1", to="+2", connection_id="1", now=0)


def test_each_api_key_gets_its_own_calls_created_on_first_use():
    namespaces = Namespaces()
    call = dial(namespaces, "A")
    assert namespaces.get("A") is namespaces.get("A") and len(namespaces) == 1
    assert namespaces.get("B").store.calls == {}
    assert [ns.api_key for ns in namespaces.owners_of(call.call_control_id)] == ["A"]
    assert namespaces.owners_of("v3:nobody") == [] and call.namespace == "A"
    assert namespaces.find("A") is namespaces.get("A") and namespaces.find("C") is None


def test_a_seed_gives_each_key_its_own_reproducible_ids():
    first, second = Namespaces(seed=7), Namespaces(seed=7)
    assert dial(first, "A").call_control_id == dial(second, "A").call_control_id
    assert dial(first, "B").call_control_id != dial(first, "A").call_control_id
    # Pinned, so a change of derivation (which would change every seeded test's ids) is deliberate.
    assert namespace_seed(7, "A") == 0xED68BD5FDBB06B53
    assert len({namespace_seed(7, "A"), namespace_seed(7, "B"), namespace_seed(8, "A")}) == 3


def test_reset_ends_live_calls_returns_running_streams_and_restarts_the_id_sequence():
    namespaces = Namespaces(seed=3)
    namespace = namespaces.get("A")
    answered = dial(namespaces, "A")
    ringing = dial(namespaces, "A", CallState.BRIDGING)
    ctx = CommandContext(ids=namespace.ids, user_id="u", call_codec="PCMU", scenario="default", now=0, timestamp="T")
    stream = open_stream(ctx, answered, {"stream_url": "ws://127.0.0.1:9/"})
    ended = open_stream(ctx, answered, {"stream_url": "ws://127.0.0.1:9/"})
    ended.state = StreamState.STOPPED
    namespace.journal.record(
        at="t",
        method="GET",
        path="/v2/x",
        query="",
        raw_body=b"",
        status=404,
        deduplicated=False,
        duration_ms=0,
        api_key="A",
    )
    namespace.webhook_attempts.append("an attempt")  # type: ignore[arg-type]
    namespace.store.remember_command("", "cmd", 0, {"result": "ok"})

    assert namespace.reset(now=5) == [stream]
    assert stream.stop_requested
    assert answered.state is CallState.ENDED and ringing.history[-1] == (5, CallState.ENDED)
    assert namespace.store.calls == {} and len(namespace.journal) == 0 and not namespace.webhook_attempts
    assert namespace.epoch == 1
    assert namespace.store.seen_command("", "cmd", 1) is None
    assert dial(namespaces, "A").call_control_id == answered.call_control_id


def test_reseed_to_none_gives_random_ids_again():
    namespace = Namespaces(seed=1).get("A")
    namespace.reseed(None)
    assert namespace.seed is None and namespace.ids.seed is None
