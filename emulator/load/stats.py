"""A load run's figures (pure): percentiles of each metric over its calls, errors by kind, whether the
emulator kept pace, and the SLOs the run is held to.

Works on the call records of the results (docs/load.md describes them): plain dicts, as ``--json`` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

STATS = ("p50", "p90", "p95", "p99", "max", "mean")
OUTCOMES = ("completed", "unanswered", "rejected", "cut", "not_created", "lost", "interrupted")
# Calls that did not go as a call should: each is one error of the kind its outcome names. (Ctrl-C's
# interrupted calls are not the app's fault.)
FAILED_OUTCOMES = ("unanswered", "rejected", "cut", "not_created", "lost")
TRAFFIC_ERRORS = ("refused_streams", "webhook_failures", "app_4xx")
ERROR_KINDS = (*FAILED_OUTCOMES, *TRAFFIC_ERRORS)
# Share of stream ticks written a frame late past which the emulator, not the app, set the pace.
BOTTLENECK_SHARE = 0.001

Values = Callable[[Mapping[str, Any]], Iterable[float | None]]


def _metric(name: str) -> Values:
    def values(call: Mapping[str, Any]) -> Iterable[float | None]:
        metrics = call.get("metrics")
        return (metrics.get(name),) if metrics else ()

    return values


def _turns(call: Mapping[str, Any]) -> Iterable[float | None]:
    metrics = call.get("metrics")
    return (turn["response_ms"] for turn in metrics["turns"]) if metrics else ()


def _yields(call: Mapping[str, Any]) -> Iterable[float | None]:
    metrics = call.get("metrics")
    return (barge["yield_ms"] for barge in metrics["barge_ins"]) if metrics else ()


# Each metric of the percentile table and where its values come from: one per call, or one per turn or barge-in.
METRICS: dict[str, tuple[Values, str]] = {
    "answer_ms": (lambda call: (call.get("answer_ms"),), "from ringing to the app's answer (wall clock)"),
    "first_audio_ms": (_metric("first_audio_ms"), "from the answer to the app's first sound"),
    "response_ms": (_turns, "from the end of each caller turn to the app's reply"),
    "yield_ms": (_yields, "how long the app talked on when the caller barged in"),
    "talk_over_ms": (_metric("talk_over_ms"), "both sides talking at once, per call"),
    "dead_air_ms": (_metric("dead_air_ms"), "the longest silence on both sides, per call"),
    "max_buffered_ms": (_metric("max_buffered_ms"), "the most app audio sent ahead of playback, per call"),
    "underrun_ms": (_metric("underrun_ms"), "gaps in the app's audio of 200 ms or less (slower than real time)"),
    "unanswered_turns": (_metric("unanswered_turns"), "caller turns the app never answered, per call"),
    "media_ms": (_metric("media_ms"), "how long each answered call's media ran"),
}


def describe(values: Sequence[float]) -> dict[str, Any]:
    """count, p50, p90, p95, p99, max, mean (linear percentiles, as numpy computes them); None when empty."""
    if not values:
        return {"count": 0, **dict.fromkeys(STATS)}
    data = np.asarray(values, dtype=float)
    cut = np.percentile(data, [50, 90, 95, 99])
    figures = [*cut, data.max(), data.mean()]
    return {"count": len(values), **{stat: round(float(v), 1) for stat, v in zip(STATS, figures, strict=True)}}


def metric_values(calls: Iterable[Mapping[str, Any]], name: str) -> list[float]:
    values, _ = METRICS[name]
    return [float(v) for call in calls for v in values(call) if v is not None]


def percentiles(calls: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: describe(metric_values(calls, name)) for name in METRICS}


def errors(calls: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many of each kind: calls by failed outcome, and the app's traffic (streams, webhooks, commands)."""
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for call in calls:
        if call.get("outcome") in FAILED_OUTCOMES:
            counts[call["outcome"]] += 1
        for kind, n in (call.get("errors") or {}).items():
            counts[kind] += n
    return counts


def has_error(call: Mapping[str, Any]) -> bool:
    return call.get("outcome") in FAILED_OUTCOMES or any((call.get("errors") or {}).values())


def pacing(calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Whether the emulator kept its 20 ms schedule on every stream, or was itself the bottleneck."""
    frames = sum(call.get("frames", 0) for call in calls)
    late = sum(call.get("late_frames", 0) for call in calls)
    worst = max((call.get("max_lateness_ms", 0.0) for call in calls), default=0.0)
    share = late / frames if frames else 0.0
    bottleneck = share >= BOTTLENECK_SHARE
    if not frames:
        verdict = "no stream ran, so the emulator's pacing was not measured (it is measured on streams)"
    elif bottleneck:
        verdict = (
            f"the emulator was the bottleneck: {share:.2%} of stream ticks were written 20 ms or more late "
            f"(worst {worst:.0f} ms), and the app's figures include that delay. Run fewer calls per emulator, "
            "or the emulator on a machine with more free cores"
        )
    else:
        verdict = f"the emulator kept pace: worst lateness {worst:.1f} ms over {frames} stream ticks"
    return {
        "frames": frames,
        "late_frames": late,
        "late_share": round(share, 6),
        "max_lateness_ms": round(worst, 3),
        "bottleneck": bottleneck,
        "verdict": verdict,
    }


@dataclass(frozen=True, slots=True)
class Slo:
    name: str
    limit: float

    def measure(self, summary: Mapping[str, Any], calls: Sequence[Mapping[str, Any]]) -> float | None:
        """The run's value of this SLO's figure; None when no call gave one (that breaches it)."""
        name = self.name
        if name == "errors":
            return float(sum(summary["errors"].values()))
        if name == "error_rate":
            return sum(map(has_error, calls)) / len(calls) if calls else None
        if name == "late_share":
            return float(summary["pacing"]["late_share"])
        if name in summary["errors"]:
            return float(summary["errors"][name])
        metric, stat = SLO_NAMES[name]
        value = summary["metrics"][metric][stat]
        return None if value is None else float(value)


def _slo_names() -> dict[str, tuple[str, str]]:
    """``response_p95_ms`` -> (response_ms, p95); ``unanswered_turns_max`` -> (unanswered_turns, max)."""
    names: dict[str, tuple[str, str]] = {}
    for metric in METRICS:
        base, ms = (metric[:-3], "_ms") if metric.endswith("_ms") else (metric, "")
        for stat in STATS:
            names[f"{base}_{stat}{ms}"] = (metric, stat)
    return names


SLO_NAMES = _slo_names()
OTHER_SLOS = ("errors", "error_rate", "late_share", *ERROR_KINDS)


def parse_slo(text: str) -> Slo:
    """``response_p95_ms=1500``: NAME=LIMIT, breached when the run's value is above LIMIT."""
    name, sep, limit = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"--slo {text!r}: expected NAME=LIMIT, e.g. response_p95_ms=1500")
    if name not in SLO_NAMES and name not in OTHER_SLOS:
        examples = "response_p95_ms, first_audio_p99_ms, answer_p50_ms, unanswered_turns_max, errors, error_rate"
        raise ValueError(f"--slo {text!r}: no figure named {name!r} (e.g. {examples}; docs/load.md lists them all)")
    try:
        value = float(limit)
    except ValueError:
        raise ValueError(f"--slo {text!r}: the limit {limit!r} is not a number") from None
    return Slo(name, value)


def summarize(calls: Sequence[Mapping[str, Any]], slos: Sequence[Slo] = ()) -> dict[str, Any]:
    """The results' ``summary``: call counts, percentiles, errors, pacing, and each SLO met or breached."""
    summary: dict[str, Any] = {
        "calls": {
            "started": sum(1 for call in calls if call.get("outcome") != "not_created"),
            "answered": sum(1 for call in calls if call.get("answered_s") is not None),
            "ended": sum(1 for call in calls if call.get("ended_s") is not None),
            "failed": sum(1 for call in calls if call.get("outcome") in FAILED_OUTCOMES),
        },
        "metrics": percentiles(calls),
        "errors": errors(calls),
        "pacing": pacing(calls),
    }
    checked = []
    for slo in slos:
        value = slo.measure(summary, calls)
        checked.append(
            {"name": slo.name, "limit": slo.limit, "value": value, "ok": value is not None and value <= slo.limit}
        )
    summary["slo"] = checked
    summary["ok"] = all(item["ok"] for item in checked)
    return summary
