"""What ``telnyx-emulator load`` prints: a live progress line while it runs, the summary table at the end."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TextIO

from emulator.load.driver import Snapshot
from emulator.load.stats import METRICS, STATS

_TTY_EVERY_S = 0.1  # a terminal line redrawn at most this often
_LOG_EVERY_S = 5.0  # without a terminal (CI logs): one line this often


class ProgressLine:
    """One line, redrawn in place on a terminal; on anything else (a CI log) a line every few seconds."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._last = float("-inf")
        self._drawn = False

    def update(self, s: Snapshot) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < (_TTY_EVERY_S if self.tty else _LOG_EVERY_S):
            return
        self._last = now
        line = format_snapshot(s)
        if self.tty:
            self.stream.write(f"\r\x1b[K{line}")
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def format_snapshot(s: Snapshot) -> str:
    started = f"{s.started}/{s.planned}" if s.planned is not None else str(s.started)
    response = "response p50 -" if s.response_p50 is None else f"response p50 {s.response_p50:.0f} ms"
    if s.response_p95 is not None:
        response += f" p95 {s.response_p95:.0f} ms"
    return (
        f"{s.t_s:7.1f} s  started {started}  ringing {s.ringing}  up {s.up}  ended {s.ended}  "
        f"failed {s.failed}  {response}"
    )


def format_summary(results: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """The end-of-run table: calls, percentiles of every metric, errors by kind, pacing, SLOs."""
    run = results["run"]
    calls = summary["calls"]
    ramp = f", ramp {run['ramp_s']:g} s" if run["ramp_s"] else ""
    lines = [
        f"{calls['started']} calls in {run['wall_s']:.1f} s against {run['emulator']} ({run['arrivals']}{ramp})"
        + ("  [interrupted]" if run["interrupted"] else ""),
        "",
        f"calls    started {calls['started']}  answered {calls['answered']}  ended {calls['ended']}  "
        f"failed {calls['failed']}",
        "",
        f"{'metric':<18}{'count':>7}" + "".join(f"{stat:>9}" for stat in STATS),
    ]
    for name in METRICS:
        figures = summary["metrics"][name]
        row = f"{name:<18}{figures['count']:>7}"
        row += "".join(f"{_figure(figures[stat]):>9}" for stat in STATS)
        lines.append(row)
    errors = {kind: n for kind, n in summary["errors"].items() if n}
    lines += ["", "errors   " + (", ".join(f"{kind} {n}" for kind, n in errors.items()) if errors else "none")]
    lines.append("pacing   " + summary["pacing"]["verdict"])
    for i, slo in enumerate(summary["slo"]):
        value = "no data" if slo["value"] is None else _figure(slo["value"])
        verdict = "ok" if slo["ok"] else "BREACHED"
        lines.append(f"{'SLO' if i == 0 else '':<9}{slo['name']} <= {slo['limit']:g}: {value}  {verdict}")
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.3g}"
