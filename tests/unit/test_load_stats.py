"""A load run's figures from call records whose answers are known: percentiles, errors by kind, the pacing
verdict, and SLOs met, breached, or without data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from emulator.load.stats import METRICS, SLO_NAMES, describe, errors, pacing, parse_slo, summarize


def call(
    index: int,
    *,
    outcome: str = "completed",
    responses: tuple[int | None, ...] = (300,),
    first_audio: int | None = 700,
    traffic: dict[str, int] | None = None,
    frames: int = 100,
    late: int = 0,
    lateness: float = 1.0,
) -> dict[str, Any]:
    answered = outcome not in ("unanswered", "not_created")
    metrics = {
        "media_ms": 2000,
        "first_audio_ms": first_audio,
        "turns": [{"start_ms": 0, "end_ms": 400, "response_ms": r} for r in responses],
        "unanswered_turns": sum(r is None for r in responses),
        "talk_over_ms": 40,
        "barge_ins": [{"at_ms": 900, "yield_ms": 120, "cleared": True}],
        "dead_air_ms": 500,
        "max_buffered_ms": 0,
        "underruns": 0,
        "underrun_ms": 0,
    }
    return {
        "index": index,
        "outcome": outcome,
        "answered_s": 1.0 if answered else None,
        "ended_s": 3.0 if outcome != "not_created" else None,
        "answer_ms": 50.0 + index if answered else None,
        "errors": {"refused_streams": 0, "webhook_failures": 0, "app_4xx": 0, **(traffic or {})},
        "metrics": metrics if answered else None,
        "frames": frames if answered else 0,
        "late_frames": late,
        "max_lateness_ms": lateness,
    }


def test_describe_gives_numpys_linear_percentiles_and_nothing_for_no_data():
    values = [float(v) for v in range(1, 101)]
    figures = describe(values)
    assert figures["count"] == 100 and figures["max"] == 100 and figures["mean"] == 50.5
    assert figures["p95"] == round(float(np.percentile(values, 95)), 1) == 95.0
    assert describe([]) == {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "max": None, "mean": None}


def test_every_turn_counts_once_and_unanswered_turns_have_no_response():
    calls = [call(0, responses=(200, 400)), call(1, responses=(600, None)), call(2, outcome="unanswered")]
    summary = summarize(calls)
    assert summary["metrics"]["response_ms"]["count"] == 3 and summary["metrics"]["response_ms"]["p50"] == 400
    assert summary["metrics"]["unanswered_turns"]["max"] == 1
    assert summary["metrics"]["answer_ms"]["count"] == 2
    assert summary["metrics"]["yield_ms"]["p50"] == 120
    assert summary["calls"] == {"started": 3, "answered": 2, "ended": 3, "failed": 1}
    assert set(summary["metrics"]) == set(METRICS)


def test_errors_by_kind_count_failed_calls_and_the_apps_traffic():
    calls = [
        call(0, traffic={"webhook_failures": 2, "app_4xx": 1}),
        call(1, outcome="unanswered"),
        call(2, outcome="not_created"),
        call(3, outcome="rejected", traffic={"refused_streams": 1}),
        call(4, outcome="cut"),
        call(5, outcome="lost"),
        call(6, outcome="interrupted"),  # Ctrl-C: not the app's fault
    ]
    assert errors(calls) == {
        "unanswered": 1,
        "rejected": 1,
        "cut": 1,
        "not_created": 1,
        "lost": 1,
        "refused_streams": 1,
        "webhook_failures": 2,
        "app_4xx": 1,
    }


def test_pacing_says_when_the_emulator_was_the_bottleneck():
    kept = pacing([call(0, frames=5000, late=4, lateness=25.0)])
    assert not kept["bottleneck"] and "kept pace" in kept["verdict"] and kept["late_share"] == 0.0008
    late = pacing([call(0, frames=1000, late=1, lateness=31.2)])
    assert late["bottleneck"] and "bottleneck" in late["verdict"] and "31 ms" in late["verdict"]
    assert "not measured" in pacing([call(0, outcome="unanswered")])["verdict"]


def test_slo_names_follow_their_metrics():
    assert SLO_NAMES["response_p95_ms"] == ("response_ms", "p95")
    assert SLO_NAMES["max_buffered_max_ms"] == ("max_buffered_ms", "max")
    assert SLO_NAMES["unanswered_turns_max"] == ("unanswered_turns", "max")
    assert parse_slo("response_p95_ms=1500").limit == 1500
    mistakes = (("response_p95_ms", "NAME=LIMIT"), ("latency_p95=3", "no figure"), ("errors=many", "not a number"))
    for bad, why in mistakes:
        with pytest.raises(ValueError, match=why):
            parse_slo(bad)


def test_slos_met_breached_and_without_data():
    calls = [call(k, responses=(100 * (k + 1),)) for k in range(10)] + [call(10, traffic={"app_4xx": 2})]
    slos = [
        parse_slo("response_p50_ms=1000"),
        parse_slo("response_p99_ms=900"),
        parse_slo("errors=1"),
        parse_slo("error_rate=0.1"),
        parse_slo("app_4xx=2"),
        parse_slo("underrun_p95_ms=0"),
    ]
    summary = summarize(calls, slos)
    verdicts = {slo["name"]: (slo["value"], slo["ok"]) for slo in summary["slo"]}
    assert verdicts["response_p50_ms"] == (500.0, True)  # 100..1000 and the last call's 300
    assert verdicts["response_p99_ms"][1] is False  # 991 ms
    assert verdicts["errors"] == (2.0, False) and verdicts["app_4xx"] == (2.0, True)
    assert verdicts["error_rate"] == (1 / 11, True)
    assert verdicts["underrun_p95_ms"] == (0.0, True)
    assert summary["ok"] is False
    nothing = summarize([call(0, outcome="unanswered")], [parse_slo("response_p95_ms=1500")])
    assert nothing["slo"][0] == {"name": "response_p95_ms", "limit": 1500, "value": None, "ok": False}
    assert summarize(calls)["ok"] is True  # no SLO: nothing to breach


def test_the_runs_own_hangup_names_the_outcome_only_if_the_call_ended_by_it():
    from emulator.load.records import outcome

    assert outcome("unanswered", False, "originator_cancel", "caller") == "unanswered"
    assert outcome("cut", True, "normal_clearing", "caller") == "cut"
    assert outcome("interrupted", False, "originator_cancel", "caller") == "interrupted"
    assert outcome("interrupted", True, "normal_clearing", "caller") == "interrupted"
    # The call ended by itself just before the run's hangup came: its own outcome stands.
    assert outcome("unanswered", False, "call_rejected", "callee") == "rejected"
    assert outcome("cut", True, "normal_clearing", "callee") == "completed"
    assert outcome(None, True, "normal_clearing", "caller") == "completed"
    assert outcome(None, False, "originator_cancel", "caller") == "rejected"
