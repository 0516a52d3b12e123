"""The load run's HTML report (emulator/load/report.py): one offline page from a results dict."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import pytest

from emulator.load.report import MAX_GANTT_CALLS, ReportUnavailable, render_report

EMULATOR_URL = "http://127.0.0.1:8000"
WEBHOOK_URL = "https://hooks.example.test/webhooks?a=1&b=2"
SVG_NAMESPACES = ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink")


def _stats(values: list[float]) -> dict[str, Any]:
    """Rough percentiles: the report only prints them, it does not compute them."""
    if not values:
        return {key: None for key in ("p50", "p90", "p95", "p99", "max", "mean")} | {"count": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "count": len(values),
        **{f"p{q}": pick(q / 100) for q in (50, 90, 95, 99)},
        "max": ordered[-1],
        "mean": sum(values) / len(values),
    }


def _call(index: int, outcome: str = "completed", *, call_id: str | None = None, metrics: bool = True) -> dict:
    created = 0.1 * index
    answered = None if outcome in ("unanswered", "rejected", "not_created") else created + 0.3
    turns = [
        {"start_ms": 1000 * k, "end_ms": 1000 * k + 400, "response_ms": None if k == 2 else 200 + 10 * index + k}
        for k in range(4)
    ]
    return {
        "index": index,
        "call_control_id": call_id or f"v3:call-{index}",
        "scenario": "default" if index % 3 else "ivr",
        "from": "+13125550100",
        "created_s": created,
        "answered_s": answered,
        "ended_s": None if outcome == "not_created" else created + 5.0,
        "answer_ms": None if answered is None else 300,
        "outcome": outcome,
        "hangup_cause": "normal_clearing",
        "hangup_source": "caller",
        "errors": {"webhook_failures": index % 2, "app_4xx": 0, "refused_streams": 0},
        "error": "connection refused" if outcome == "not_created" else None,
        "metrics": None
        if answered is None or not metrics
        else {
            "media_ms": 4700,
            "first_audio_ms": 500 + index,
            "turns": turns,
            "unanswered_turns": 1,
            "talk_over_ms": 0,
            "barge_ins": [{"at_ms": 2000, "yield_ms": 120, "cleared": True}],
            "dead_air_ms": 900,
            "max_buffered_ms": 0,
            "underruns": 0,
            "underrun_ms": 0,
        },
        "frames": 235,
        "late_frames": 0,
        "max_lateness_ms": 1.0,
    }


def make_results(n: int = 10, *, slo_ok: bool = True, bottleneck: bool = False, interrupted: bool = False) -> dict:
    """N calls: mostly completed, plus an unanswered, a rejected, a cut, a never-created one and one without metrics."""
    special = {1: "unanswered", 2: "rejected", 3: "cut", 4: "not_created"}
    calls = [_call(i, special.get(i, "completed"), metrics=i != 5) for i in range(n)]
    calls[-1]["call_control_id"] = "v3:<script>alert('x')</script>"
    responses = [t["response_ms"] for c in calls for t in (c["metrics"] or {}).get("turns", []) if t["response_ms"]]
    first_audio = [c["metrics"]["first_audio_ms"] for c in calls if c["metrics"]]
    answered = sum(c["answered_s"] is not None for c in calls)
    failed = sum(c["outcome"] != "completed" for c in calls)
    metrics = {name: _stats([]) for name in ("yield_ms", "talk_over_ms", "underrun_ms")}
    metrics |= {"answer_ms": _stats([300.0] * answered), "response_ms": _stats(responses)}
    metrics |= {"first_audio_ms": _stats(first_audio), "unanswered_turns": _stats([1] * answered)}
    p95 = metrics["response_ms"]["p95"]
    return {
        "version": 1,
        "run": {
            "started_at": "2026-12-05T01:40:00Z",
            "wall_s": 0.1 * n + 5.5,
            "emulator": EMULATOR_URL,
            "own_emulator": True,
            "webhook_url": WEBHOOK_URL,
            "arrivals": "rate 10/s",
            "ramp_s": 2.0,
            "calls_planned": n,
            "duration_s": None,
            "scenarios": {"default": 2.0, "<b>ivr</b>": 1.0},
            "interrupted": interrupted,
        },
        "calls": calls,
        "timeline": [
            {"t_s": 0.5 * k, "started": min(n, 5 * k), "ringing": 1, "up": 3, "ended": max(0, 5 * k - 20), "failed": 0}
            for k in range(int(n / 5) + 12)
        ],
        "summary": {
            "calls": {"started": n, "answered": answered, "ended": n - 1, "failed": failed},
            "metrics": metrics,
            "errors": {"not_created": 1, "unanswered": 1, "rejected": 1, "cut": 1, "refused_streams": 0},
            "pacing": {
                "frames": 235 * n,
                "late_frames": 3,
                "late_share": 3 / (235 * n),
                "max_lateness_ms": 25.3,
                "bottleneck": bottleneck,
                "verdict": "the emulator fell behind" if bottleneck else "the emulator kept pace",
            },
            "slo": [
                {"name": "response_p95_ms", "limit": 1500 if slo_ok else 100, "value": p95, "ok": slo_ok},
                {"name": "failed_share", "limit": 0.5, "value": 0.004, "ok": True},
            ],
            "ok": slo_ok,
        },
    }


def test_the_page_is_one_html_document_with_three_plots():
    page = render_report(make_results())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 3
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    for heading in ("Verdict", "Calls", "Percentiles", "Response times", "Calls over time", "Per-call timeline"):
        assert heading in page


def test_nothing_is_fetched_from_anywhere():
    page = render_report(make_results())
    assert "<script" not in page and "<link" not in page and "@import" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {EMULATOR_URL, WEBHOOK_URL.replace("&", "&amp;"), *SVG_NAMESPACES}


def test_text_from_users_is_escaped():
    page = render_report(make_results(30))
    assert "<script>" not in page
    assert "v3:&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;ivr&lt;/b&gt;" in page and "<b>ivr</b>" not in page
    assert "a=1&amp;b=2" in page


def test_slos_met_and_breached():
    assert "All SLOs met" in render_report(make_results())
    page = render_report(make_results(slo_ok=False))
    assert "SLO breached: response_p95_ms" in page and "All SLOs met" not in page
    assert '<td class="breached">breached</td>' in page and "<th>status</th>" in page
    assert "<td>0.004</td>" in page  # a small measured value keeps its digits
    results = make_results()
    results["summary"]["slo"] = []
    assert "No SLOs given" in render_report(results)


def test_a_pacing_bottleneck_is_highlighted():
    assert '<p class="warn"><strong>Bottleneck: the emulator fell behind' in render_report(
        make_results(bottleneck=True)
    )
    page = render_report(make_results())
    assert "Pacing: the emulator kept pace" in page and 'class="warn"' not in page


def test_an_interrupted_run_says_so():
    assert 'class="interrupted"' in render_report(make_results(interrupted=True))
    assert 'class="interrupted"' not in render_report(make_results())


def test_percentiles_show_a_dash_for_empty_metrics_and_errors_only_non_zero():
    page = render_report(make_results())
    row = re.search(r"<tr><td class=\"l\"><code>yield_ms</code></td>.*?</tr>", page)
    assert row is not None
    assert row.group(0).count("—") == 6 and "<td>0</td>" in row.group(0)
    assert "how long the app talked on when the caller barged in" in page
    table = page.split("<h2>Percentiles</h2>")[1]
    assert table.index("<code>answer_ms</code>") < table.index("<code>response_ms</code>") < table.index("yield_ms")
    assert "refused_streams" not in page.split("Errors by kind")[1].split("</table>")[0]


def test_slowest_calls_are_ranked_by_their_worst_response():
    page = render_report(make_results(30))
    table = page.split("Slowest 20 calls")[1]
    assert table.count("<tr>") == 1 + 20
    assert table.index("&lt;script&gt;") < table.index("v3:call-28") < table.index("v3:call-27")
    assert "connection refused" not in table  # a call never created has no response to rank


def test_a_run_with_no_data_says_so_instead_of_plotting():
    results = make_results(10)
    for call in results["calls"]:
        call["metrics"] = None
    results["timeline"] = []
    results["summary"]["metrics"] = {}
    page = render_report(results)
    assert "No data: no call had a measured response" in page
    assert "No data: the run recorded no timeline samples" in page
    assert "No call has a measured response" in page
    assert page.count("<svg") == 1  # the per-call timeline still shows who rang and who failed


def test_an_empty_run_renders():
    page = render_report({"version": 1, "run": {}, "calls": [], "timeline": [], "summary": {}})
    assert page.count("<svg") == 0 and "No errors." in page and "No SLOs given" in page


def test_a_thousand_calls_stay_small_and_quick():
    started = time.perf_counter()
    page = render_report(make_results(1000))
    assert time.perf_counter() - started < 30
    assert len(page.encode()) < 3_000_000
    assert f"Only the first {MAX_GANTT_CALLS} of 1000 calls are drawn" in page


def test_without_matplotlib_the_report_says_how_to_install_it(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ReportUnavailable, match=re.escape("pip install 'telnyx-emulator[report]'")):
        render_report(make_results())
