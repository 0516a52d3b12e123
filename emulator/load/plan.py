"""A load run's plan (pure): when each call starts, with which scenario, from which number.

Arrivals are either a *rate* (calls started per second, on a fixed schedule) or a *concurrency* (a new call
starts whenever fewer than that many are up), or both (the rate decides when, the concurrency caps how many).
A ramp grows either linearly from zero over its first seconds, so an app that scales up is not hit cold. The
run starts calls until ``calls`` have started or ``duration_s`` has passed, whichever comes first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_CALLS = 10  # neither --calls nor --duration: a short run, enough to see the figures


class PlanError(ValueError):
    """A plan that cannot run: the message names the option."""


@dataclass(frozen=True, slots=True)
class ScenarioMix:
    """Scenarios and their weights; ``pick`` draws one per call from a seeded generator (a run replays)."""

    names: tuple[str | None, ...]  # None: the emulator's default scenario
    weights: tuple[float, ...]

    @classmethod
    def parse(cls, specs: Sequence[str]) -> ScenarioMix:
        """``["ivr-menu:3", "default:1"]``: NAME or NAME:WEIGHT (a name may be a .yaml path)."""
        if not specs:
            return cls((None,), (1.0,))
        names: list[str | None] = []
        weights: list[float] = []
        for spec in specs:
            name, weight = spec, 1.0
            head, sep, tail = spec.rpartition(":")
            if sep and head:
                try:
                    weight = float(tail)
                except ValueError:
                    pass  # a path with a colon in it, not a weight
                else:
                    name = head
            if not name or not math.isfinite(weight) or weight <= 0:
                raise PlanError(f"--scenario {spec!r}: expected NAME or NAME:WEIGHT with a weight above 0")
            names.append(name)
            weights.append(weight)
        return cls(tuple(names), tuple(weights))

    def pick(self, rng: random.Random) -> str | None:
        if len(self.names) == 1:
            return self.names[0]
        return rng.choices(self.names, self.weights)[0]

    def shares(self) -> dict[str, float]:
        """Each scenario's share of the calls, as the report shows it."""
        total = sum(self.weights)
        return {name or "default": weight / total for name, weight in zip(self.names, self.weights, strict=True)}


@dataclass(frozen=True, slots=True)
class LoadPlan:
    calls: int | None = None  # how many calls to start; None: as many as the duration allows
    duration_s: float | None = None  # stop starting calls after this long
    rate: float | None = None  # calls started per second
    concurrency: int | None = None  # calls up at once, at most
    ramp_s: float = 0.0
    mix: ScenarioMix = ScenarioMix((None,), (1.0,))

    def __post_init__(self) -> None:
        # (flag, value, the least it may be, whether that least is allowed)
        checks: list[tuple[str, float | None, float, bool]] = [
            ("--calls", self.calls, 1, True),
            ("--duration", self.duration_s, 0, False),
            ("--rate", self.rate, 0, False),
            ("--concurrency", self.concurrency, 1, True),
            ("--ramp", self.ramp_s, 0, True),
        ]
        for flag, value, least, allowed in checks:
            if value is not None and not (math.isfinite(value) and (value >= least if allowed else value > least)):
                raise PlanError(f"{flag}: {value:g} is out of range")
        if self.calls is None and self.duration_s is None:
            object.__setattr__(self, "calls", DEFAULT_CALLS)
        if self.rate is None and self.concurrency is None:
            object.__setattr__(self, "concurrency", min(self.calls or DEFAULT_CALLS, DEFAULT_CALLS))

    @property
    def arrivals(self) -> str:
        """How calls arrive, in words: ``rate 5/s``, ``concurrency 50``, ``rate 5/s, at most 50 up``."""
        if self.rate is not None and self.concurrency is not None:
            return f"rate {self.rate:g}/s, at most {self.concurrency} up"
        return f"rate {self.rate:g}/s" if self.rate is not None else f"concurrency {self.concurrency}"

    def start_time(self, k: int) -> float:
        """When call ``k`` (0-based) may start, in seconds from the run's start: 0 without a rate. With a ramp
        the rate grows linearly from 0, so ``rate * t**2 / (2 * ramp)`` calls have started by ``t < ramp``."""
        rate = self.rate
        if rate is None:
            return 0.0
        ramp = self.ramp_s
        if ramp <= 0:
            return k / rate
        in_ramp = rate * ramp / 2  # calls started during the ramp
        if k <= in_ramp:
            return math.sqrt(2 * ramp * k / rate)
        return ramp + (k - in_ramp) / rate

    def concurrency_at(self, t: float) -> int | None:
        """How many calls may be up at ``t`` seconds (None: no cap). Ramping, at least one."""
        cap = self.concurrency
        if cap is None or self.ramp_s <= 0 or t >= self.ramp_s:
            return cap
        return max(1, min(cap, math.ceil(cap * t / self.ramp_s)))

    def may_start(self, k: int, t: float) -> bool:
        """Whether call ``k`` is still part of the run at ``t`` (its count and the duration allow it)."""
        if self.calls is not None and k >= self.calls:
            return False
        return self.duration_s is None or t < self.duration_s

    def caller_number(self, base: str, k: int) -> str:
        """Call ``k``'s caller: ``base`` plus ``k``, with as many digits (so each call has its own number)."""
        digits = base.lstrip("+")
        number = (int(digits) + k) % 10 ** len(digits)
        return ("+" if base.startswith("+") else "") + str(number).zfill(len(digits))
