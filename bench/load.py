"""``telnyx-emulator load`` against the lightest app there is: how many calls at once one emulator carries on time.

For each concurrency C (default 50, 100, 200, 300), one wave: ``telnyx-emulator load --calls C --concurrency C``
(``--ramp S``: started over S seconds rather than all at once)
with a DURATION-second silence scenario, against bench/_loadapp.py (its own process) which answers each call
with a both-track stream to its own WebSocket and drops the audio. The load command starts its own emulator
(``TELNYX_EMULATOR_MAX_STREAMS=0``); its ``--json`` gives each run's figures: calls answered, answer time,
and the emulator's pacing (stream ticks written 20 ms or more late, worst lateness) with its verdict.

On one machine the app, the load command and the emulator share the CPUs: the largest C the verdict calls
"kept pace" is what this machine carries, not the emulator alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import (
    PYTHON,
    REPO,
    Checks,
    add_check_flag,
    free_port,
    machine,
    print_table,
    probe,
    run_main,
    write_silence_scenario,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 100, 200, 300])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of audio per call (default 10)")
    parser.add_argument("--ramp", type=float, default=0.0, help="start the calls over this many seconds (default 0)")
    add_check_flag(parser)
    args = parser.parse_args()
    print(f"load: {machine()}")
    rows = []
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        scenario = write_silence_scenario(Path(tmp), "quiet", args.duration)
        for concurrency in args.concurrency:
            summary, wall = run_once(concurrency, args.ramp, scenario, Path(tmp))
            pacing, answer = summary["pacing"], summary["metrics"]["answer_ms"]
            calls = summary["calls"]
            rows.append(
                (
                    str(concurrency),
                    f"{calls['answered']}/{calls['started']}",
                    f"{answer['p50']:.0f} / {answer['p99']:.0f} ms" if answer["count"] else "-",
                    str(pacing["frames"]),
                    f"{pacing['late_share']:.3%}",
                    f"{pacing['max_lateness_ms']:.1f} ms",
                    "yes" if pacing["bottleneck"] else "no",
                    f"{wall:.1f} s",
                )
            )
            if concurrency == min(args.concurrency):
                checks.add(
                    f"kept pace ({concurrency} calls)",
                    "no bottleneck",
                    str(pacing["bottleneck"]),
                    not pacing["bottleneck"],
                )
    print()
    headers = (
        "calls at once",
        "answered",
        "answer p50 / p99",
        "stream ticks",
        "late >= 20 ms",
        "worst",
        "bottleneck",
        "wall",
    )
    print_table(headers, rows)
    return checks.report(args.check)


def run_once(concurrency: int, ramp: float, scenario: Path, tmp: Path) -> tuple[dict, float]:
    emulator_port, webhook_port, ws_port = free_port(), free_port(), free_port()
    key = "bench-load"
    app = subprocess.Popen(
        [
            PYTHON,
            str(REPO / "bench" / "_loadapp.py"),
            str(webhook_port),
            str(ws_port),
            f"http://127.0.0.1:{emulator_port}",
            key,
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while probe(webhook_port) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        out = tmp / f"load-{concurrency}.json"
        env = {**os.environ, "TELNYX_EMULATOR_MAX_STREAMS": "0", "TELNYX_EMULATOR_LOG_LEVEL": "warning"}
        started = time.monotonic()
        subprocess.run(
            [PYTHON, "-m", "emulator", "load", "--port", str(emulator_port), "--api-key", key,
             "--webhook-url", f"http://127.0.0.1:{webhook_port}/webhooks", "--calls", str(concurrency),
             "--concurrency", str(concurrency), "--ramp", str(ramp), "--scenario", str(scenario),
             "--json", str(out), "--quiet"],
            cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wall = time.monotonic() - started
        print(f"[{concurrency} calls] done in {wall:.1f} s", file=sys.stderr, flush=True)
        return json.loads(out.read_text())["summary"], wall
    finally:
        app.terminate()
        app.wait(10)


if __name__ == "__main__":
    run_main(main, "load")
