"""Startup: time from process start to the first HTTP answer, and idle RSS after startup.

Each run spawns ``python -m emulator serve`` (default scenario unless --scenario) and polls
``GET /`` on its port every 2 ms; the first HTTP answer of any status (401 here: no Bearer token)
ends the clock, which started just before the process was spawned. After --settle seconds of
idleness it reads VmRSS (and the peak, VmHWM) from /proc/PID/status. Then it sends one
streaming_start (to a port that refuses the connection), times its answer, waits --settle seconds
and reads VmRSS again: what the emulator holds once it has served a command (request validators and
the stream machinery are loaded on first use), then stops the emulator.

Targets: <= 0.5 s to the first answer and <= 60 MB idle RSS (median of the runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from _harness import (
    Checks,
    Emulator,
    add_check_flag,
    closed_port,
    machine,
    post_json,
    print_table,
    proc_status_kb,
    run_main,
    streaming_start_path,
)

TARGET_STARTUP_S = 0.5
TARGET_RSS_MB = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="emulator starts, one after another (default 5)")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before reading RSS (default 1)")
    parser.add_argument("--scenario", help="pass --scenario to the emulator (default: its default scenario)")
    add_check_flag(parser)
    args = parser.parse_args()
    extra = ["--scenario", args.scenario] if args.scenario else []

    print(f"startup: {machine()}")
    command = " ".join(["python -m emulator serve", *extra])
    print(f"{args.runs} starts of `{command}`; RSS read after {args.settle:g} s idle")
    rows: list[tuple[float, float, float, float, float]] = []  # (s to first answer, RSS MB, peak MB, s, RSS MB)
    dead = closed_port()
    body = json.dumps({"stream_url": f"ws://127.0.0.1:{dead.getsockname()[1]}/media"})
    for index in range(args.runs):
        with Emulator(extra) as emulator:  # started: it has answered HTTP
            ready = emulator.ready_at - emulator.started_at
            time.sleep(args.settle)
            rss = proc_status_kb(emulator.pid, "VmRSS") / 1024
            hwm = proc_status_kb(emulator.pid, "VmHWM") / 1024
            sent = time.perf_counter()
            status, text = post_json(emulator.port, streaming_start_path(f"v3:startup-{index}"), body)
            first = time.perf_counter() - sent
            if status != 200:
                raise SystemExit(f"streaming_start answered {status}: {text[:200]}")
            time.sleep(args.settle)
            served_rss = proc_status_kb(emulator.pid, "VmRSS") / 1024
        rows.append((ready, rss, hwm, first, served_rss))
        print(
            f"[startup] run {index + 1}/{args.runs}: {ready * 1000:.0f} ms, {rss:.1f} MB", file=sys.stderr, flush=True
        )
    dead.close()
    print()
    print_table(
        ("run", "start -> first HTTP answer", "idle VmRSS", "VmHWM (peak)", "first streaming_start", "VmRSS after it"),
        [
            (str(i + 1), f"{s * 1000:.0f} ms", f"{r:.1f} MB", f"{h:.1f} MB", f"{f * 1000:.1f} ms", f"{sr:.1f} MB")
            for i, (s, r, h, f, sr) in enumerate(rows)
        ],
    )
    startup = statistics.median(row[0] for row in rows)
    rss = statistics.median(row[1] for row in rows)
    first = statistics.median(row[3] for row in rows)
    served = statistics.median(row[4] for row in rows)
    print(
        f"\nmedian: {startup * 1000:.0f} ms to the first answer (min {min(row[0] for row in rows) * 1000:.0f}, "
        f"max {max(row[0] for row in rows) * 1000:.0f}); idle RSS {rss:.1f} MB; first streaming_start "
        f"{first * 1000:.1f} ms, RSS after it {served:.1f} MB"
    )
    checks = Checks()
    checks.add(
        "start -> first HTTP answer (median)",
        f"<= {TARGET_STARTUP_S:g} s",
        f"{startup:.3f} s",
        startup <= TARGET_STARTUP_S,
    )
    checks.add("idle RSS after startup (median)", f"<= {TARGET_RSS_MB:g} MB", f"{rss:.1f} MB", rss <= TARGET_RSS_MB)
    return checks.report(args.check)


if __name__ == "__main__":
    run_main(main, "startup")
