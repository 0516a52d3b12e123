"""Concurrent streams at speed 1: per-frame lateness against the emulator's schedule, emulator CPU and RSS.

For each N (default 100, 500, 1000) a fresh emulator (speed 1, a DURATION-second silence scenario, PCMU,
``TELNYX_EMULATOR_MAX_STREAMS=0`` so the stream limit does not interfere) is asked for N streams with
``stream_track: both_tracks`` (2 media frames per stream every 20 ms: 1000 streams are 100,000 frames/s).
They all go to one minimal WebSocket receiver in a separate process (bench/_wsrecv.py), which stamps each
TCP read with time.monotonic (system-wide) and notes each media frame's ``media.timestamp``.

Lateness of a frame = arrival - (t0 + media.timestamp), where t0 is the stream's start on the emulator's
shared 20 ms grid of the monotonic clock (RealClock.aligned_start), recovered from the arrivals. It is the
emulator's lateness plus loopback and the receiver's own delay. The emulator's CPU (fraction of one core)
and RSS are sampled in the steady state, from 2 s after the last POST to 2 s before the streams end; the
receiver's CPU is reported too, since a saturated receiver would make every frame look late.

``µs/stream-tick`` is the emulator's steady-state CPU per stream per 20 ms tick (both tracks: two frames), in
its main process; ``workers CPU`` is its media workers' together (``--media-workers N ...`` runs every stream
count with each N; docs/scaling.md).

Target: 1000 streams with p99 lateness <= 5 ms. The output also names the largest N that met it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _harness import (
    AUTH_HEADER,
    HOST,
    Checks,
    Emulator,
    HarnessError,
    add_check_flag,
    machine,
    print_table,
    proc_cpu_seconds,
    proc_status_kb,
    run_main,
    streaming_start_path,
    write_silence_scenario,
)
from _wsrecv import EVENT_LOOP, ReceiverProcess, StreamLog, schedule_start
from throughput import start_py_spy, stop_py_spy

TARGET_STREAMS = 1000
TARGET_LATE_MS = 5.0
FRAME_S = 0.020


def child_pids(pid: int) -> list[int]:
    """The process's children (its media workers), from /proc."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def workers_cpu_seconds(pid: int) -> float:
    return sum(proc_cpu_seconds(child) for child in child_pids(pid))


@dataclass
class Run:
    streams: int
    media_workers: int
    started: int  # streaming_start answered 200
    post_seconds: float  # to send all the POSTs
    closed_1000: int  # streams that ended with a close code 1000
    frames: int  # media frames received
    expected: int  # media frames the streams should have sent
    late_p50_ms: float
    late_p99_ms: float
    late_p999_ms: float
    late_max_ms: float
    worst_stream_p99_ms: float
    emulator_cpu: float  # the main process: fraction of one core, steady state
    workers_cpu: float  # the media workers together
    receiver_cpu: float
    rss_mb: float  # VmRSS in the steady state
    hwm_mb: float  # VmHWM at the end


def post_streams(port: int, count: int, track: str, receiver_port: int, threads: int = 8) -> int:
    """``count`` streaming_start POSTs over ``threads`` keep-alive connections; returns how many answered 200."""
    ok = 0
    lock = threading.Lock()
    body_url = f"ws://{HOST}:{receiver_port}/stream"

    def worker(first: int) -> None:
        nonlocal ok
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        mine = 0
        try:
            for index in range(first, count, threads):
                body = json.dumps({"stream_url": body_url, "stream_track": track, "command_id": f"c-{index}"})
                conn.request(
                    "POST",
                    streaming_start_path(f"bench-concurrent-{index}"),
                    body=body,
                    headers={"Authorization": AUTH_HEADER, "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                response.read()
                mine += response.status == 200
        finally:
            conn.close()
        with lock:
            ok += mine

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(120)
    return ok


def lateness_ms(logs: list[StreamLog]) -> tuple[np.ndarray, list[float]]:
    """Every media frame's lateness (ms) across the streams, and each stream's p99."""
    parts = []
    per_stream = []
    for log in logs:
        if not log.arrived:
            continue
        arrived = np.frombuffer(log.arrived, dtype=np.float64)
        stamps = np.frombuffer(log.timestamp_ms, dtype=np.int64)
        late = (arrived - (schedule_start(log) + stamps / 1000)) * 1000
        parts.append(late)
        per_stream.append(float(np.percentile(late, 99)))
    return (np.concatenate(parts) if parts else np.zeros(0)), per_stream


def measure(streams: int, workers: int, args: argparse.Namespace, scenario_dir: str) -> Run:
    duration: float = args.duration
    receiver = ReceiverProcess(expected=streams, timeout=duration + 90)
    options = ["--speed", "1", "--scenario-dir", scenario_dir, "--scenario", "concurrent"]
    try:
        # Without workers, no flag: the script also measures trees from before --media-workers existed.
        with Emulator([*options, *(["--media-workers", str(workers)] if workers else [])]) as emulator:
            print(f"[{streams} streams] starting ...", file=sys.stderr, flush=True)
            began = time.monotonic()
            started = post_streams(emulator.port, streams, args.track, receiver.port)
            posted = time.monotonic()
            if started != streams:
                print(f"[{streams} streams] only {started} POSTs answered 200", file=sys.stderr, flush=True)
            steady_from, steady_to = posted + 2.0, began + duration - 2.0
            if steady_to - steady_from < 1.0:
                raise HarnessError(f"--duration {duration:g} is too short for {streams} streams: no steady state")
            time.sleep(max(0.0, steady_from - time.monotonic()))
            profiler = start_py_spy(args.py_spy, f"{streams}", emulator.pid, steady_to - steady_from)
            cpu0, rcpu0, wall0 = emulator.cpu_seconds(), proc_cpu_seconds(receiver.pid()), time.monotonic()
            wcpu0 = workers_cpu_seconds(emulator.pid)
            time.sleep(max(0.0, (steady_from + steady_to) / 2 - time.monotonic()))
            rss = proc_status_kb(emulator.pid, "VmRSS") / 1024
            time.sleep(max(0.0, steady_to - time.monotonic()))
            wall = time.monotonic() - wall0
            cpu = (emulator.cpu_seconds() - cpu0) / wall
            workers_cpu = (workers_cpu_seconds(emulator.pid) - wcpu0) / wall
            receiver_cpu = (proc_cpu_seconds(receiver.pid()) - rcpu0) / wall
            if profiler is not None:
                stop_py_spy(profiler)
            logs = receiver.results()
            hwm = proc_status_kb(emulator.pid, "VmHWM") / 1024
    except RuntimeError as exc:
        raise HarnessError(str(exc)) from None
    finally:
        receiver.kill()
    late, per_stream = lateness_ms(logs)
    if late.size == 0:
        raise HarnessError("no media frames arrived")
    tracks = 2 if args.track == "both_tracks" else 1
    return Run(
        streams=streams,
        media_workers=workers,
        started=started,
        post_seconds=posted - began,
        closed_1000=sum(log.close_code == 1000 for log in logs),
        frames=int(late.size),
        expected=streams * tracks * round(duration / FRAME_S),
        late_p50_ms=float(np.percentile(late, 50)),
        late_p99_ms=float(np.percentile(late, 99)),
        late_p999_ms=float(np.percentile(late, 99.9)),
        late_max_ms=float(late.max()),
        worst_stream_p99_ms=max(per_stream),
        emulator_cpu=cpu,
        workers_cpu=workers_cpu,
        receiver_cpu=receiver_cpu,
        rss_mb=rss,
        hwm_mb=hwm,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--streams", type=int, nargs="+", default=[100, 500, 1000], help="stream counts (default 100 500 1000)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of audio per stream (default 20)")
    parser.add_argument("--track", default="both_tracks", choices=("inbound_track", "both_tracks"))
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="PREFIX",
        help="also sample the emulator with py-spy during the steady state into PREFIX-N.txt",
    )
    parser.add_argument(
        "--media-workers",
        type=int,
        nargs="+",
        default=[0],
        metavar="N",
        help="run each stream count with each of these --media-workers (default 0: streams in the main process)",
    )
    add_check_flag(parser)
    args = parser.parse_args()
    # The emulator's stream limit (default 1000) is not what is measured here.
    os.environ["TELNYX_EMULATOR_MAX_STREAMS"] = "0"

    print(f"concurrent: {machine()}")
    print(
        f"N streams at speed 1, {args.track}, {args.duration:g} s silence scenario, PCMU; "
        f"minimal receiver in a separate process (bench/_wsrecv.py, on {EVENT_LOOP})"
    )
    loop = subprocess.run(
        [sys.executable, "-c", "import uvloop"], capture_output=True, check=False, cwd=tempfile.gettempdir()
    )
    print(f"uvloop importable: {'yes' if loop.returncode == 0 else 'no'} (uvicorn uses it when it is)")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-concurrent-") as tmp:
        write_silence_scenario(Path(tmp), "concurrent", args.duration)
        for workers in args.media_workers:
            for streams in args.streams:
                runs.append(measure(streams, workers, args, tmp))
                r = runs[-1]
                print(
                    f"[{streams} streams, {workers} media workers] p99 lateness {r.late_p99_ms:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    print()
    print_table(
        (
            "streams",
            "media workers",
            "200s",
            "POSTs",
            "close 1000",
            "frames",
            "missing",
            "late p50",
            "late p99",
            "late p99.9",
            "late max",
            "worst stream p99",
            "emulator CPU",
            "µs/stream-tick",
            "workers CPU",
            "receiver CPU",
            "RSS",
            "peak RSS",
        ),
        [
            (
                str(r.streams),
                str(r.media_workers),
                str(r.started),
                f"{r.post_seconds:.2f} s",
                str(r.closed_1000),
                str(r.frames),
                str(r.expected - r.frames),
                f"{r.late_p50_ms:.2f} ms",
                f"{r.late_p99_ms:.2f} ms",
                f"{r.late_p999_ms:.2f} ms",
                f"{r.late_max_ms:.1f} ms",
                f"{r.worst_stream_p99_ms:.2f} ms",
                f"{r.emulator_cpu:.0%}",
                f"{r.emulator_cpu * FRAME_S * 1e6 / r.streams:.1f}",  # CPU per stream per 20 ms tick
                f"{r.workers_cpu:.0%}",
                f"{r.receiver_cpu:.0%}",
                f"{r.rss_mb:.0f} MB",
                f"{r.hwm_mb:.0f} MB",
            )
            for r in runs
        ],
    )
    for workers in args.media_workers:
        meeting = [
            r.streams
            for r in runs
            if r.media_workers == workers and r.late_p99_ms <= TARGET_LATE_MS and r.frames == r.expected
        ]
        best = max(meeting) if meeting else "none"
        print(f"\n{workers} media workers: largest N measured with p99 lateness <= {TARGET_LATE_MS:g} ms: {best}")
    checks = Checks()
    for r in runs:
        if r.streams == TARGET_STREAMS:
            checks.add(
                f"p99 lateness ({r.streams} streams, {r.media_workers} media workers)",
                f"<= {TARGET_LATE_MS:g} ms",
                f"{r.late_p99_ms:.2f} ms",
                r.late_p99_ms <= TARGET_LATE_MS,
            )
        checks.add(
            f"missing frames ({r.streams} streams, {r.media_workers} workers)",
            "0",
            str(r.expected - r.frames),
            r.frames == r.expected,
        )
    return checks.report(args.check)


if __name__ == "__main__":
    run_main(main, "concurrent")
