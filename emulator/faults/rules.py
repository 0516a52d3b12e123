"""Fault rules (pure): what each rule matches, when it fires, and the record of every fault injected.

A rule is JSON (``schemas/fault_rule.schema.json``)::

    {"target": "webhooks", "kind": "duplicate", "event_type": "call.answered"}
    {"target": "api", "kind": "status", "status": 503, "action": "speak", "times": 2}
    {"target": "media", "kind": "loss", "probability": 0.2}

It *matches* an occasion (a webhook about to be delivered, a REST command, a media frame) when every matcher
it gives agrees: ``call_control_id``, ``event_type`` (webhooks), ``action`` (api: the action's name, or
``dial``), ``stream_id`` (media), ``scenario`` (the call's). A matching rule *fires* always, or with a
``probability``, or ``every`` Nth match, and at most ``times`` times in all. The randomness comes from random
streams per target and per media stream, seeded from ``--seed`` and the API key: a failing run replays exactly.
The kinds of each target and their parameters are the schema's; this module knows only how rules fire.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

MATCHERS = ("call_control_id", "event_type", "action", "stream_id", "scenario")
FIRING = ("probability", "every", "times")
# What each kind may say besides its matchers and firing (the schema gives their ranges).
PARAMETERS = ("status", "retry_after", "delay_ms", "at_ms", "jitter_ms", "burst", "code", "detail")
LOG_SIZE = 1000  # injected faults kept per namespace, the latest
STACKING = ("delay",)  # kinds of which several rules may fire on one occasion (their delays add up)


@dataclass(slots=True)
class FaultRule:
    id: str
    target: str
    kind: str
    matchers: dict[str, str]
    params: dict[str, Any]
    probability: float | None = None
    every: int | None = None
    times: int | None = None
    source: str = "api"  # "api" (POST /_emulator/faults) or "scenario:<name>" (a scenario's faults: section)
    matched: int = 0
    fired: int = 0

    @classmethod
    def from_json(cls, rule_id: str, body: Mapping[str, Any], source: str = "api") -> FaultRule:
        """A rule from its JSON, already valid against the schema."""
        return cls(
            id=rule_id,
            target=body["target"],
            kind=body["kind"],
            matchers={name: body[name] for name in MATCHERS if name in body},
            params={name: _whole(name, body[name]) for name in PARAMETERS if name in body},
            probability=body.get("probability"),
            every=_whole("every", body.get("every")),
            times=_whole("times", body.get("times")),
            source=source,
        )

    def matches(self, target: str, context: Mapping[str, str | None]) -> bool:
        if target != self.target:
            return False
        return all(context.get(name) == wanted for name, wanted in self.matchers.items())

    def decide(self, rng: random.Random) -> bool:
        """A match happened: does the rule fire on it? Counts both."""
        if self.times is not None and self.fired >= self.times:
            return False
        self.matched += 1
        if self.every is not None and self.matched % self.every:
            return False
        if self.probability is not None and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "target": self.target, "kind": self.kind, **self.matchers, **self.params}
        for name in FIRING:
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return {**data, "source": self.source, "matched": self.matched, "fired": self.fired}


def _whole(name: str, value: Any) -> Any:
    """JSON Schema's integers include 3.0: the rule keeps 3 (a header says Retry-After: 3, not 3.0)."""
    return int(value) if isinstance(value, float) and name != "probability" else value


@dataclass(frozen=True, slots=True)
class Injected:
    """One fault the emulator injected: which rule, where, and what it did."""

    rule_id: str
    target: str
    kind: str
    at: str  # ISO 8601 UTC
    call_control_id: str | None
    detail: str  # what happened, in words: "call.answered delivered twice (same event id)"

    def as_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "target": self.target,
            "kind": self.kind,
            "at": self.at,
            "call_control_id": self.call_control_id,
            "detail": self.detail,
        }


class HasFaults(Protocol):
    """A scenario, as the fault rules see it: its faults: section."""

    @property
    def faults(self) -> tuple[dict[str, Any], ...]: ...


@dataclass(slots=True)
class FaultBook:
    """A namespace's fault rules, in the order they were added, and the faults they injected.

    ``scenarios`` (the emulator's loaded scenarios, by key; it grows as scenario files are loaded) brings
    each scenario's ``faults:`` section in as rules that match its calls only, the first time the book is
    asked after the scenario was loaded. ``default_scenario`` is the key of a call whose scenario is None.

    Randomness: each target draws from a random stream of its own, and so does each media stream
    (``new_random``), all derived from ``seed``: what webhooks draw does not depend on how many media frames
    were asked before them, so a seeded run replays."""

    seed: int | None = None
    rules: list[FaultRule] = field(default_factory=list)
    injected: deque[Injected] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    scenarios: Mapping[str, HasFaults] = field(default_factory=dict)
    default_scenario: str = "default"
    observer: Callable[[Injected], None] | None = None  # told of each fault injected: the namespace's event feed
    _installed: set[str] = field(default_factory=set)
    _live: dict[str, int] = field(default_factory=dict)  # rules not spent yet, by target
    _randoms: dict[str, random.Random] = field(default_factory=dict)
    _next_id: int = 1

    @classmethod
    def seeded(cls, seed: int | None) -> FaultBook:
        return cls(seed)

    def random_for(self, name: str) -> random.Random:
        """The random stream of target ``name``, kept: from the seed, or from the OS."""
        stream = self._randoms.get(name)
        if stream is None:
            stream = self._randoms[name] = self.new_random(name)
        return stream

    def new_random(self, name: str) -> random.Random:
        """A random stream for ``name`` (``media:<stream_id>``), not kept: its holder keeps it as long as it lives."""
        if self.seed is None:
            return random.Random()
        digest = hashlib.sha256(f"{self.seed}\0{name}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def reseed(self, seed: int | None) -> None:
        """Restart every random stream from ``seed``, and every rule's counts: the rules stay."""
        self.seed = seed
        self._randoms.clear()
        for rule in self.rules:
            rule.matched = rule.fired = 0
        self._count()

    def sync(self) -> bool:
        """Bring in the faults of scenarios loaded since; whether the book has any rule (cheap)."""
        if len(self._installed) != len(self.scenarios):
            for key, scenario in list(self.scenarios.items()):
                if key not in self._installed:
                    self._installed.add(key)
                    for body in scenario.faults:
                        self.add({**body, "scenario": key}, source=f"scenario:{key}")
        return bool(self.rules)

    def has(self, target: str) -> bool:
        """Whether a rule of ``target`` may still fire: cheap enough to ask per media frame."""
        if len(self._installed) != len(self.scenarios):
            self.sync()
        return self._live.get(target, 0) > 0

    def add(self, body: Mapping[str, Any], source: str = "api") -> FaultRule:
        rule = FaultRule.from_json(f"flt_{self._next_id}", body, source)
        self._next_id += 1
        self.rules.append(rule)
        self._live[rule.target] = self._live.get(rule.target, 0) + 1
        return rule

    def remove(self, rule_id: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                self.rules.remove(rule)
                self._count()
                return rule
        return None

    def clear(self) -> None:
        """Forget every rule (a scenario's too: they come back from the scenario) and the log; ids start over."""
        self.rules.clear()
        self.injected.clear()
        self._installed.clear()
        self._live.clear()
        self._next_id = 1

    def clear_rules(self) -> int:
        """DELETE /_emulator/faults: every rule goes (a scenario's come back after a reset); the log stays."""
        deleted = len(self.rules)
        self.rules.clear()
        self._live.clear()
        return deleted

    def _count(self) -> None:
        self._live = {}
        for rule in self.rules:
            if not rule.spent:
                self._live[rule.target] = self._live.get(rule.target, 0) + 1

    def fire(
        self,
        target: str,
        kinds: tuple[str, ...] | None = None,
        exclusive: tuple[str, ...] = (),
        *,
        rng: random.Random | None = None,
        **context: str | None,
    ) -> list[FaultRule]:
        """The rules that fire on this occasion, in the order they were added (each counts the match).

        ``kinds``: only rules of these kinds can (the others cannot happen here). One rule at most fires per
        kind (``delay``s add up: each fires); ``exclusive``: kinds of which one at most happens at all (a
        command is answered one way). A rule that cannot act on the occasion is not asked, and does not count
        it. ``rng``: the random stream to draw from (the target's by default). Cheap without rules."""
        if not self.has(target):
            return []
        if "scenario" in context and context["scenario"] is None:
            context["scenario"] = self.default_scenario
        draw = rng if rng is not None else self.random_for(target)
        fired: list[FaultRule] = []
        seen: set[str] = set()
        decided = False
        for rule in self.rules:
            kind = rule.kind
            if (kinds is not None and kind not in kinds) or (kind in seen and kind not in STACKING):
                continue
            if decided and kind in exclusive:
                continue
            if rule.matches(target, context) and self.decide(rule, draw):
                fired.append(rule)
                seen.add(kind)
                decided = decided or kind in exclusive
        return fired

    def decide(self, rule: FaultRule, rng: random.Random) -> bool:
        """``rule.decide``, keeping count of the rules that may still fire."""
        if not rule.decide(rng):
            return False
        if rule.spent:
            self._live[rule.target] -= 1
        return True

    def note(self, rule: FaultRule, at: str, call_control_id: str | None, detail: str) -> Injected:
        injected = Injected(rule.id, rule.target, rule.kind, at, call_control_id, detail)
        self.injected.append(injected)
        if self.observer is not None:
            self.observer(injected)
        return injected
