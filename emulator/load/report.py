"""The HTML report of a load run (`telnyx-emulator load --report FILE.html`).

`render_report(results)` turns the run's results dict (what `--json` writes, version 1) into one
self-contained page: inline CSS, inline SVG plots, no script and nothing fetched, so it reads offline and
can be attached to a CI run. matplotlib draws the plots; it is the optional extra `report`, imported only
here, through its object API (no pyplot: no global figure registry, no GUI backend).

Every string that came from the user (call ids, scenario names, URLs, error texts) is HTML-escaped.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from emulator.load.stats import FAILED_OUTCOMES, METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_GANTT_CALLS: Final = 200  # more rows would be unreadable, and would grow the page past a few MB
SLOWEST_CALLS: Final = 20
RINGING, UP, WARN, TURN, REPLY = "#9ecae1", "#2171b5", "#e6550d", "#252525", "#31a354"
INSTALL_HINT: Final = "the HTML report needs matplotlib: pip install 'telnyx-emulator[report]'"

# One plain-English line per metric of summary.metrics (docs/metrics.md has the exact definitions).
METRIC_MEANINGS: Final[Mapping[str, str]] = {name: meaning for name, (_, meaning) in METRICS.items()}
_Columns = tuple[list[float], list[float], list[float]]  # rows, lefts, widths (or rows, starts, ends)
_ORDER: Final = {name: i for i, name in enumerate(METRIC_MEANINGS)}  # the table's rows, unknown metrics last
PERCENTILE_COLUMNS: Final = ("count", "p50", "p90", "p95", "p99", "max", "mean")

CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.box{border:2px solid;border-radius:6px;padding:.6em 1em;margin:1em 0}
.ok{border-color:#31a354;background:#edf8e9}.bad{border-color:#de2d26;background:#fee5d9}
.none{border-color:#bbb;background:#f7f7f7}.warn{background:#fff3cd;border:2px solid #e6550d;padding:.4em .8em}
.interrupted{background:#fff3cd;border-left:6px solid #e6550d;padding:.4em .8em;font-weight:bold}
td.breached{color:#de2d26;font-weight:bold}td.met{color:#31a354}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}svg{max-width:100%;height:auto}
code{font-size:.95em}
"""


class ReportUnavailable(Exception):
    """matplotlib is not installed: the message says `pip install 'telnyx-emulator[report]'`."""


def render_report(results: Mapping[str, Any]) -> str:
    """The whole report: one self-contained HTML page (inline SVG plots, inline CSS, no scripts, no CDN)."""
    figure_class = _load_figure_class()
    run: Mapping[str, Any] = results.get("run") or {}
    summary: Mapping[str, Any] = results.get("summary") or {}
    calls: Sequence[Mapping[str, Any]] = results.get("calls") or []
    sections = [
        _header(run),
        _verdict(summary),
        _calls_section(summary),
        _percentiles(summary.get("metrics") or {}),
        "<h2>Plots</h2>",
        _response_plot(figure_class, calls, summary.get("metrics") or {}),
        _timeline_plot(figure_class, results.get("timeline") or []),
        _gantt_plot(figure_class, calls, run),
        _slowest(calls),
    ]
    title = "Load run report"
    if run.get("started_at"):
        title += f" — {run['started_at']}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>\n'
        f"<body>\n{''.join(sections)}\n</body></html>\n"
    )


def require_matplotlib() -> None:
    """Raises ReportUnavailable now, before a long run, rather than when the report is written."""
    _load_figure_class()


def _load_figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # the `report` extra is optional: say how to get it
        raise ReportUnavailable(INSTALL_HINT) from exc
    return Figure


# --- text sections ---------------------------------------------------------------------------------------


def _header(run: Mapping[str, Any]) -> str:
    where = f"<code>{_e(run.get('emulator') or '?')}</code>" + (
        " (started by the run)" if run.get("own_emulator") else ""
    )
    scope = [f"arrivals {_e(run.get('arrivals') or '?')}", f"ramp {_num(run.get('ramp_s'))} s"]
    if run.get("calls_planned") is not None:
        scope.append(f"{_num(run['calls_planned'])} calls planned")
    if run.get("duration_s") is not None:
        scope.append(f"duration {_num(run['duration_s'])} s")
    weights: Mapping[str, float] = run.get("scenarios") or {}
    total = sum(weights.values()) or 1.0
    mix = ", ".join(f"<code>{_e(name)}</code> {100 * w / total:.0f} %" for name, w in weights.items())
    line = (
        f"Started {_e(run.get('started_at') or '?')}, ran {_num(run.get('wall_s'))} s against {where}, "
        f"webhooks to <code>{_e(run.get('webhook_url') or '?')}</code>; {', '.join(scope)}; scenario mix: {mix or '—'}."
    )
    note = ""
    if run.get("interrupted"):
        note = '<p class="interrupted">Interrupted: the run was stopped early (Ctrl-C); the figures cover what ran.</p>'
    return f'<h1>Load run report</h1>\n<p class="sub">{line}</p>\n{note}'


def _verdict(summary: Mapping[str, Any]) -> str:
    slos: Sequence[Mapping[str, Any]] = summary.get("slo") or []
    if not slos:
        box = '<div class="box none"><strong>No SLOs given.</strong></div>'
    else:
        breached = [slo for slo in slos if not slo.get("ok")]
        if breached:
            names = ", ".join(_e(slo.get("name")) for slo in breached)
            head, cls = f"SLO breached: {names}", "bad"
        else:
            head, cls = "All SLOs met", "ok"
        rows = [
            [_e(slo.get("name")), _num(slo.get("limit")), _num(slo.get("value")), "ok" if slo.get("ok") else "breached"]
            for slo in slos
        ]
        table = _table(["SLO", "limit", "measured", "status"], rows, status_column=3)
        box = f'<div class="box {cls}"><strong>{head}</strong>{table}</div>'
    pacing: Mapping[str, Any] = summary.get("pacing") or {}
    share = pacing.get("late_share")
    figures = (
        f"{_num(pacing.get('late_frames'))} of {_num(pacing.get('frames'))} frames late"
        f" ({'—' if share is None else f'{100 * share:.3f} %'}), worst {_num(pacing.get('max_lateness_ms'))} ms"
    )
    verdict = _e(pacing.get("verdict") or "no pacing verdict")
    if pacing.get("bottleneck"):
        text = f'<p class="warn"><strong>Bottleneck: {verdict}</strong><br>{figures}</p>'
    else:
        text = f"<p>Pacing: {verdict}<br>{figures}</p>"
    return f"<h2>Verdict</h2>\n{box}\n{text}\n"


def _calls_section(summary: Mapping[str, Any]) -> str:
    counts: Mapping[str, Any] = summary.get("calls") or {}
    keys = ("started", "answered", "ended", "failed")
    table = _table(list(keys), [[_num(counts.get(key)) for key in keys]])
    errors = [[_e(kind), _num(n)] for kind, n in (summary.get("errors") or {}).items() if n]
    errors_html = _table(["error", "count"], errors, left_columns=1) if errors else "<p>No errors.</p>"
    return f"<h2>Calls</h2>\n{table}\n<h3>Errors by kind</h3>\n{errors_html}\n"


def _percentiles(metrics: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        [f"<code>{_e(name)}</code>", _e(METRIC_MEANINGS.get(name, ""))] + [_num(s.get(c)) for c in PERCENTILE_COLUMNS]
        for name, s in sorted(metrics.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER)))
    ]
    if not rows:
        return "<h2>Percentiles</h2>\n<p>No metrics.</p>\n"
    table = _table(["metric", "meaning", *PERCENTILE_COLUMNS], rows, left_columns=2)
    note = "<p class='sub'>Milliseconds, except <code>count</code> and <code>unanswered_turns</code>.</p>"
    return f"<h2>Percentiles</h2>\n{table}\n{note}\n"


def _slowest(calls: Sequence[Mapping[str, Any]]) -> str:
    ranked = sorted(
        ((worst, call) for call in calls if (worst := max(_responses([call]), default=None)) is not None),
        key=lambda pair: -pair[0],
    )[:SLOWEST_CALLS]
    head = f"<h2>Slowest {SLOWEST_CALLS} calls by their worst response</h2>\n"
    if not ranked:
        return head + "<p>No call has a measured response.</p>\n"
    rows = [
        [_num(call.get("index")), f"<code>{_e(call.get('call_control_id'))}</code>", _e(call.get("scenario"))]
        + [_e(call.get("outcome")), _num(call.get("answer_ms")), _num(_metric(call, "first_audio_ms"))]
        + [_num(worst), _call_errors(call)]
        for worst, call in ranked
    ]
    columns = ["#", "call_control_id", "scenario", "outcome", "answer_ms", "first_audio_ms", "worst response_ms"]
    return head + _table([*columns, "errors"], rows, left_columns=4, last_left=True) + "\n"


def _metric(call: Mapping[str, Any], name: str) -> Any:
    return (call.get("metrics") or {}).get(name)


def _call_errors(call: Mapping[str, Any]) -> str:
    parts = [f"{_e(kind)} {_num(n)}" for kind, n in (call.get("errors") or {}).items() if n]
    if call.get("error"):
        parts.append(_e(call["error"]))
    return ", ".join(parts) or "—"


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    left_columns: int = 0,
    last_left: bool = False,
    status_column: int | None = None,
) -> str:
    """Cells are already escaped HTML; the first `left_columns` (and the last, if asked) align left."""

    def cls(i: int, n: int, value: str | None = None) -> str:
        names = ["l"] if i < left_columns or (last_left and i == n - 1) else []
        if i == status_column and value is not None:  # a body cell: colour the verdict
            names.append("breached" if value == "breached" else "met")
        return f' class="{" ".join(names)}"' if names else ""

    n = len(header)
    head = "".join(f"<th{cls(i, n)}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i, n, v)}>{v}</td>" for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: object) -> str:
    """A number for a table cell: "—" for null, whole numbers without decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _e(value)
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"  # shares and small ratios keep their digits


# --- plots -----------------------------------------------------------------------------------------------


def _responses(calls: Iterable[Mapping[str, Any]]) -> list[float]:
    return [
        turn["response_ms"]
        for call in calls
        for turn in ((call.get("metrics") or {}).get("turns") or [])
        if turn.get("response_ms") is not None
    ]


def _response_plot(
    figure_class: type[Figure], calls: Sequence[Mapping[str, Any]], metrics: Mapping[str, Mapping[str, Any]]
) -> str:
    series = {
        "response_ms": _responses(calls),
        "first_audio_ms": [
            m["first_audio_ms"] for call in calls if (m := call.get("metrics")) and m.get("first_audio_ms") is not None
        ],
    }
    title = "Response times"
    if not any(series.values()):
        return f"<h3>{title}</h3>\n<p>No data: no call had a measured response or first audio.</p>\n"
    fig = figure_class(figsize=(10, 3.6), layout="constrained")
    for ax, (name, values) in zip(fig.subplots(1, 2), series.items(), strict=True):
        label = "every caller turn's response_ms" if name == "response_ms" else "every call's first_audio_ms"
        ax.set_title(f"{label} (n={len(values)})", fontsize=10)
        ax.set_xlabel(f"{name} (ms)")
        ax.set_ylabel("count")
        if not values:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.hist(values, bins=40, color=UP, alpha=0.8)
        stats = metrics.get(name) or {}
        for key, style in (("p50", "--"), ("p95", ":")):
            if stats.get(key) is not None:
                ax.axvline(stats[key], color=WARN, linestyle=style, label=f"{key} {_num(stats[key])} ms")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _figure(fig, title, "Histograms; dashed and dotted lines: p50 and p95 from the summary.", "response")


def _timeline_plot(figure_class: type[Figure], timeline: Sequence[Mapping[str, Any]]) -> str:
    title = "Calls over time"
    if not timeline:
        return f"<h3>{title}</h3>\n<p>No data: the run recorded no timeline samples.</p>\n"
    t = [sample.get("t_s", 0) for sample in timeline]

    def column(key: str) -> list[float]:
        return [sample.get(key) or 0 for sample in timeline]

    fig = figure_class(figsize=(10, 5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.stackplot(t, column("up"), column("ringing"), labels=["up", "ringing"], colors=[UP, RINGING], step="post")
    top.set_ylabel("concurrent calls")
    top.set_title("Calls in progress", fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    for key, color in (("started", RINGING), ("ended", UP), ("failed", WARN)):
        bottom.step(t, column(key), where="post", color=color, label=key)
    bottom.set_ylabel("calls (cumulative)")
    bottom.set_xlabel("time since the run started (s)")
    bottom.legend(loc="upper left", fontsize=8)
    return _figure(fig, title, "Sampled at each look at the live calls, about every 0.25 s.", "timeline")


def _gantt_plot(figure_class: type[Figure], calls: Sequence[Mapping[str, Any]], run: Mapping[str, Any]) -> str:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    title = "Per-call timeline"
    shown = sorted(calls, key=lambda call: call.get("index", 0))[:MAX_GANTT_CALLS]
    if not shown:
        return f"<h3>{title}</h3>\n<p>No data: no call was started.</p>\n"
    wall = float(run.get("wall_s") or max((c.get("ended_s") or c.get("created_s") or 0 for c in shown), default=0))
    bars: dict[str, _Columns] = {color: ([], [], []) for color in (RINGING, UP, WARN)}
    ends: tuple[list[float], list[float]] = ([], [])
    replies: _Columns = ([], [], [])
    for row, call in enumerate(shown):
        created = float(call.get("created_s") or 0.0)
        ended = wall if call.get("ended_s") is None else float(call["ended_s"])
        if call.get("answered_s") is None:  # never answered, or never created: a sliver at least, so the row shows
            end = created if call.get("outcome") == "not_created" else ended
            _bar(bars[WARN], row, created, max(end, created + 0.1))
            continue
        answered = float(call["answered_s"])
        _bar(bars[RINGING], row, created, answered)
        _bar(bars[WARN if call.get("outcome") in FAILED_OUTCOMES else UP], row, answered, ended)
        for turn in (call.get("metrics") or {}).get("turns") or []:
            end = answered + turn.get("end_ms", 0) / 1000
            ends[0].append(end)
            ends[1].append(row)
            if turn.get("response_ms") is not None:
                replies[0].append(row)
                replies[1].append(end)
                replies[2].append(end + turn["response_ms"] / 1000)
    fig = figure_class(figsize=(10, 1.6 + 0.045 * len(shown)), layout="constrained")
    ax = fig.add_subplot()
    for color, (rows, lefts, widths) in bars.items():
        if rows:
            ax.barh(rows, widths, left=lefts, height=0.8, color=color, linewidth=0)
    if ends[0]:
        ax.plot(ends[0], ends[1], linestyle="none", marker="|", markersize=4, color=TURN)
    if replies[0]:
        ax.hlines(replies[0], replies[1], replies[2], colors=REPLY, linewidth=2)
    ax.set_ylim(len(shown) - 0.5, -0.5)  # the first call on top
    ax.set_xlabel("time since the run started (s)")
    ax.set_ylabel("call (row in start order)")
    handles = [
        Patch(color=RINGING, label="ringing"),
        Patch(color=UP, label="up"),
        Patch(color=WARN, label="failed / unanswered"),
        Line2D([], [], color=TURN, marker="|", linestyle="none", label="caller turn ends"),
        Line2D([], [], color=REPLY, linewidth=2, label="app's response time"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=5, fontsize=8, frameon=False)
    caption = "Turn ends and responses are media time from the answer, placed on the wall clock."
    if len(calls) > len(shown):
        caption = f"Only the first {len(shown)} of {len(calls)} calls are drawn. " + caption
    return _figure(fig, title, caption, "gantt")


def _bar(into: _Columns, row: int, start: float, end: float) -> None:
    into[0].append(row)
    into[1].append(start)
    into[2].append(max(end - start, 0.0))


def _figure(fig: Figure, title: str, caption: str, salt: str) -> str:
    return f"<figure><h3>{_e(title)}</h3>\n{_svg(fig, salt)}\n<figcaption>{_e(caption)}</figcaption></figure>\n"


_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
_GROUP_ID = re.compile(r'<g id="[^"]*">')


def _svg(fig: Figure, salt: str) -> str:
    """The figure as inline SVG: text stays text, no prolog/DOCTYPE, no metadata, ids unique on the page."""
    import matplotlib

    buffer = io.StringIO()
    rc = matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # text as <text>, not paths: smaller, and searchable
            "svg.hashsalt": f"report-{salt}",  # per-figure ids, so several SVGs can share the page
            "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],  # repeated in every <text>: keep it short
        }
    )
    with rc:
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = _PROLOG.sub("", buffer.getvalue(), count=1)
    # matplotlib names every group (figure_1, axes_1, ...): the same names in each figure, referenced by nothing.
    return _GROUP_ID.sub("<g>", svg).strip()
