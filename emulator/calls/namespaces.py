"""Namespaces: each API key gets a world of its own — calls, call queues, command_id memory, id sequence, REST journal.

Parallel CI jobs that share one emulator use different API keys and never see each other's calls; the
control plane under ``/_emulator/`` shows, seeds and resets only the caller's namespace. A namespace is
created the first time its key is used. Shared by all namespaces: settings, scenarios, the stream
runtime, the webhook sender and the signing key.

Ids: a namespace draws call, leg, session and stream ids from its own ``IdFactory``. With a seed, that
factory is seeded from the seed *and* the API key, so the same seed, key and sequence of requests give
the same ids, while two namespaces seeded alike still never share an id (streams are tracked by id
emulator-wide).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from emulator.calls.feed import Feed
from emulator.calls.ids import IdFactory
from emulator.calls.journal import Journal
from emulator.calls.models import StreamRecord
from emulator.calls.queues import Queues
from emulator.calls.store import CallStore
from emulator.faults.rules import FaultBook, HasFaults
from emulator.texml.application import TexmlApplication

if TYPE_CHECKING:  # the sender is I/O; a namespace only holds what it recorded
    from emulator.webhooks.sender import DeliveryAttempt


def namespace_seed(seed: int, api_key: str) -> int:
    """The seed of one namespace's id factory: stable across runs and Python versions."""
    digest = hashlib.sha256(f"{seed}\0{api_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def id_factory(seed: int | None, api_key: str) -> IdFactory:
    return IdFactory(namespace_seed(seed, api_key) if seed is not None else None)


def fault_book(seed: int | None, api_key: str) -> FaultBook:
    """The namespace's fault rules draw from a stream of their own: adding a rule changes no id."""
    return FaultBook.seeded(namespace_seed(seed, "faults\0" + api_key) if seed is not None else None)


@dataclass(slots=True)
class Namespace:
    api_key: str
    store: CallStore
    journal: Journal = field(default_factory=Journal)
    seed: int | None = None  # the seed the id sequence restarts from on reset; None: random ids
    # Delivery attempts of the webhooks sent about this namespace's calls, the latest ``history``
    # (recorded by recorder.NamespacedWebhookSender).
    webhook_attempts: deque[DeliveryAttempt] = field(default_factory=deque)
    # Counts resets: an event queued before a reset still goes out, but its attempts are no longer
    # this namespace's (its call is forgotten).
    epoch: int = 0
    faults: FaultBook = field(default_factory=lambda: FaultBook.seeded(None))  # docs/faults.md
    feed: Feed = field(default_factory=Feed)  # what happens here, pushed to GET /_emulator/events
    texml: TexmlApplication | None = None  # PUT /_emulator/texml: where its TeXML calls' documents come from

    @property
    def ids(self) -> IdFactory:
        return self.store.ids

    @property
    def queues(self) -> Queues:
        """The namespace's call queues (kept by its store, so commands reach them too)."""
        return self.store.queues

    def reseed(self, seed: int | None) -> None:
        """Draw ids from ``seed`` from now on (``None``: random ids)."""
        self.seed = seed
        self.store.ids = id_factory(seed, self.api_key)
        self.faults.reseed(fault_book(seed, self.api_key).seed)  # the rules stay; their random streams restart

    def reset(self, now: float) -> list[StreamRecord]:
        """Forget calls, queues, commands, the journal and the webhook log; restart the id sequence.

        Returns the streams still running, for the runtime to stop. Their ``streaming.stopped`` events
        are still sent but no longer belong to the namespace: its calls are forgotten before they stop.
        """
        forgotten = len(self.store.calls)
        running = self.store.clear(now)
        self.journal.clear()
        self.webhook_attempts.clear()
        self.faults.clear()
        self.texml = None
        self.epoch += 1
        self.reseed(self.seed)
        self.feed.publish("reset", {"calls": forgotten, "streams_stopped": len(running), "seed": self.seed})
        return running


class Namespaces:
    """Every namespace of one emulator, by API key, created on first use."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        strict: bool = False,
        command_id_window: float = 60.0,
        history: int = 1000,
        scenarios: Mapping[str, HasFaults] | None = None,
        default_scenario: str = "default",
        watch: Callable[[Namespace], None] | None = None,
    ) -> None:
        self.seed = seed
        self.scenarios: Mapping[str, HasFaults] = scenarios if scenarios is not None else {}  # their faults: sections
        self.default_scenario = default_scenario
        self.strict = strict
        self.command_id_window = command_id_window
        self.history = history  # calls, journal entries and webhook attempts kept per namespace
        # Called with each new namespace: the shell hooks its event feed up (api/events.py: the JSON it sends).
        self.watch = watch
        self.feeds_closed = False
        self._by_key: dict[str, Namespace] = {}

    def get(self, api_key: str) -> Namespace:
        namespace = self._by_key.get(api_key)
        if namespace is None:
            store = CallStore(
                id_factory(self.seed, api_key),
                namespace=api_key,
                strict=self.strict,
                command_id_window=self.command_id_window,
                history=self.history,
            )
            namespace = self._by_key[api_key] = Namespace(
                api_key,
                store,
                journal=Journal(self.history),
                seed=self.seed,
                webhook_attempts=deque(maxlen=self.history),
                faults=fault_book(self.seed, api_key),
            )
            namespace.faults.scenarios = self.scenarios
            namespace.faults.default_scenario = self.default_scenario
            if self.feeds_closed:
                namespace.feed.close()
            if self.watch is not None:
                self.watch(namespace)
        return namespace

    def find(self, api_key: str) -> Namespace | None:
        """The key's namespace if it exists (``get`` creates one)."""
        return self._by_key.get(api_key)

    def owners_of(self, call_control_id: str) -> list[Namespace]:
        """Every namespace that knows this call: more than one only for ids several keys made up in
        lenient mode (``call_control_id`` itself, say); ids the emulator makes are never shared."""
        return [ns for ns in self._by_key.values() if call_control_id in ns.store.calls]

    def close_feeds(self) -> None:
        """End every event stream, and refuse new ones: the emulator is stopping."""
        self.feeds_closed = True
        for namespace in self._by_key.values():
            namespace.feed.close()

    def __iter__(self) -> Iterator[Namespace]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)
