"""The pytest fixture's cost per test: starting and stopping an in-process emulator (``TelnyxEmulator``).

The ``telnyx_emulator`` fixture gives every test its own emulator, so a suite of N tests pays N starts
and N stops. This script runs, in a fresh interpreter (``BENCH_PYTHON``, in ``BENCH_EMULATOR_ROOT`` if
set), one warm-up start (imports) and then RUNS timed ``with TelnyxEmulator(): pass`` rounds: start is
``__enter__`` (receivers, ``create_app``, uvicorn listening, the control client), stop is ``__exit__``
(streams stopped, uvicorn's graceful shutdown, receivers closed).

No target: the issue does not set one. It is a figure to keep an eye on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess

from _harness import EMULATOR_ROOT, PYTHON, Checks, add_check_flag, machine, print_table, run_main

_PROBE = """
import json, sys, time
from emulator.testing import TelnyxEmulator
with TelnyxEmulator():
    pass
rows = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    emulator = TelnyxEmulator().start()
    ready = time.perf_counter()
    emulator.stop()
    rows.append((ready - started, time.perf_counter() - ready))
print(json.dumps(rows))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="timed start/stop rounds (default 10)")
    add_check_flag(parser)
    args = parser.parse_args()
    print(f"fixture: {machine()}")
    print(f"{args.runs} rounds of TelnyxEmulator().start() / .stop() in one process, after a warm-up round")
    done = subprocess.run(
        [PYTHON, "-c", _PROBE, str(args.runs)], cwd=EMULATOR_ROOT, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"the probe failed:\n{done.stderr[-2000:]}")
    rows: list[tuple[float, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    print()
    print_table(
        ("round", "start", "stop", "start + stop"),
        [
            (str(i + 1), f"{a * 1000:.0f} ms", f"{b * 1000:.0f} ms", f"{(a + b) * 1000:.0f} ms")
            for i, (a, b) in enumerate(rows)
        ],
    )
    start = statistics.median(a for a, _b in rows)
    stop = statistics.median(b for _a, b in rows)
    print(f"\nmedian: start {start * 1000:.0f} ms, stop {stop * 1000:.0f} ms, per test {(start + stop) * 1000:.0f} ms")
    return Checks().report(args.check)


if __name__ == "__main__":
    run_main(main, "fixture")
