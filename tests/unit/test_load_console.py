"""What ``telnyx-emulator load`` prints, and the usage errors it stops on before starting anything."""

from __future__ import annotations

import io
import sys

import pytest

from emulator.cli import main
from emulator.load.console import ProgressLine, format_snapshot, format_summary
from emulator.load.driver import Snapshot
from emulator.load.stats import METRICS, parse_slo, summarize
from tests.unit.test_load_stats import call


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def snapshot(t: float, **changes) -> Snapshot:
    base = dict(t_s=t, started=12, ringing=1, up=5, ended=6, failed=1, response_p50=420.0, response_p95=910.4)
    return Snapshot(**{**base, **changes, "planned": changes.get("planned", 20)})


def test_the_progress_line_is_redrawn_on_a_terminal_and_printed_every_few_seconds_in_a_log(monkeypatch):
    assert format_snapshot(snapshot(12.5)) == (
        "   12.5 s  started 12/20  ringing 1  up 5  ended 6  failed 1  response p50 420 ms p95 910 ms"
    )
    assert format_snapshot(snapshot(1, planned=None, response_p50=None, response_p95=None)).endswith(
        "started 12  ringing 1  up 5  ended 6  failed 1  response p50 -"
    )
    clock = iter([0.0, 0.05, 0.2, 3.0, 5.5])
    monkeypatch.setattr("emulator.load.console.time.monotonic", lambda: next(clock))
    terminal, log = Terminal(), io.StringIO()
    on_terminal = ProgressLine(terminal)
    for t in (0.0, 0.05, 0.2):
        on_terminal.update(snapshot(t))
    on_terminal.close()
    assert terminal.getvalue().count("\r\x1b[K") == 2 and terminal.getvalue().endswith("\n")  # 0.05 s: too soon
    in_log = ProgressLine(log)
    for t in (3.0, 5.5):
        in_log.update(snapshot(t))
    assert log.getvalue().count("\n") == 1  # the first line, then none until 5 s have passed
    quiet = ProgressLine(Terminal(), enabled=False)
    quiet.update(snapshot(9))
    assert quiet.stream.getvalue() == ""


def test_the_summary_table_has_every_metric_the_errors_pacing_and_slos():
    calls = [call(0), call(1, outcome="unanswered"), call(2, traffic={"app_4xx": 2})]
    summary = summarize(calls, [parse_slo("response_p95_ms=200"), parse_slo("app_4xx=5")])
    results = {
        "run": {"wall_s": 12.34, "emulator": "http://127.0.0.1:8000", "arrivals": "concurrency 5", "ramp_s": 2.0,
                "interrupted": False},
    }  # fmt: skip
    text = format_summary(results, summary)
    lines = text.splitlines()
    assert lines[0] == "3 calls in 12.3 s against http://127.0.0.1:8000 (concurrency 5, ramp 2 s)"
    assert "calls    started 3  answered 2  ended 3  failed 1" in lines
    assert all(any(line.startswith(name + " ") for line in lines) for name in METRICS)
    assert "errors   unanswered 1, app_4xx 2" in lines
    assert "SLO      response_p95_ms <= 200: 300  BREACHED" in lines and "         app_4xx <= 5: 2  ok" in lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--calls", "5"], "give --webhook-url"),
        (["--webhook-url", "http://127.0.0.1:9/w", "--scenario", "x:0"], "weight above 0"),
        (["--webhook-url", "http://127.0.0.1:9/w", "--slo", "response_p95_ms"], "expected NAME=LIMIT"),
        (["--webhook-url", "http://127.0.0.1:9/w", "--report", "r.html"], "pip install 'telnyx-emulator[report]'"),
    ],
)
def test_usage_errors_exit_2_before_anything_starts(monkeypatch, capsys, argv, message):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the report extra were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["load", *argv], environ={}) == 2
    assert message in capsys.readouterr().err
