"""Pacing at speed 1: inter-frame gaps, drift and lateness of one media stream, as the receiving app sees them.

A minimal WebSocket receiver in a separate process (bench/_wsrecv.py: an asyncio.Protocol that reads the
clock once per TCP read and does almost nothing else per frame) records the arrival time
(time.monotonic, system-wide) of every frame of one stream of a DURATION-second silence scenario, first
with stream_track=inbound_track, then both_tracks. Per track it prints the inter-frame gap p50/p99/max,
p99 |gap - 20 ms|, the drift of the last frame against arrival(0) + n * 20 ms, and each frame's lateness
against the emulator's own schedule: arrival - (t0 + media.timestamp), t0 being the stream's start on
the emulator's shared 20 ms grid of the monotonic clock.

Earlier versions received in the bench process with a websockets server and stamped frames in the
handler coroutine; that receiver added up to ~4 ms of its own jitter (see docs/performance.md).

Targets: p99 |gap - 20 ms| <= 1 ms and |drift| <= 2 ms.

--baseline first measures the same figures for a bare asyncio loop in this process that only wakes
itself with loop.call_at every 20 ms (no emulator, no sockets): the floor an asyncio sender can
reach on this machine; then the same loop with one more timer firing every 100 ms, as uvicorn's
main loop does in the emulator. Each takes DURATION seconds; both are reported, not checked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    HOST,
    Checks,
    Emulator,
    HarnessError,
    Progress,
    add_check_flag,
    machine,
    percentile,
    post_json,
    print_table,
    run_main,
    streaming_start_path,
    write_silence_scenario,
)
from _wsrecv import EVENT_LOOP, ReceiverProcess, StreamLog, schedule_start

FRAME_S = 0.020
GAP_TARGET_MS = 1.0
DRIFT_TARGET_MS = 2.0


@dataclass
class TrackFigures:
    stream_track: str
    track: str
    frames: int
    missing: int
    gap_p50_ms: float
    gap_p99_ms: float
    gap_max_ms: float
    dev_p99_ms: float  # p99 of |gap - 20 ms|
    drift_ms: float  # last frame against arrival(0) + n * 20 ms
    worst_offset_ms: float  # max |arrival(i) - (arrival(0) + i * 20 ms)| over the stream
    emulator_cpu: float = float("nan")  # fraction of one core the emulator used while streaming
    # arrival - (t0 + media.timestamp), t0 being the stream's start on the emulator's 20 ms grid
    late_p50_ms: float = float("nan")
    late_p99_ms: float = float("nan")
    late_max_ms: float = float("nan")


def figures(stream_track: str, log: StreamLog) -> list[TrackFigures]:
    """Per-track figures of one stream, plus each frame's lateness against the emulator's own schedule."""
    t0 = schedule_start(log)
    per_track: dict[str, list[tuple[int, float]]] = {}
    late: dict[str, list[float]] = {}
    for arrived, stamp, outbound in zip(log.arrived, log.timestamp_ms, log.outbound, strict=True):
        track = "outbound" if outbound else "inbound"
        per_track.setdefault(track, []).append((stamp // 20 + 1, arrived))
        late.setdefault(track, []).append((arrived - (t0 + stamp / 1000)) * 1000)
    result = track_figures(stream_track, per_track)
    for r in result:
        r.late_p50_ms = percentile(late[r.track], 50)
        r.late_p99_ms = percentile(late[r.track], 99)
        r.late_max_ms = max(late[r.track])
    return result


def track_figures(stream_track: str, per_track: dict[str, list[tuple[int, float]]]) -> list[TrackFigures]:
    """Figures per track from (chunk number, arrival time) pairs in arrival order."""
    result = []
    for track, chunks in sorted(per_track.items()):
        times = [t for _chunk, t in chunks]
        expected = chunks[-1][0] - chunks[0][0] + 1
        gaps_ms = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
        t0 = times[0]
        offsets_ms = [(t - (t0 + i * FRAME_S)) * 1000 for i, t in enumerate(times)]
        result.append(
            TrackFigures(
                stream_track=stream_track,
                track=track,
                frames=len(chunks),
                missing=expected - len(chunks),
                gap_p50_ms=percentile(gaps_ms, 50),
                gap_p99_ms=percentile(gaps_ms, 99),
                gap_max_ms=max(gaps_ms),
                dev_p99_ms=percentile([abs(g - FRAME_S * 1000) for g in gaps_ms], 99),
                drift_ms=offsets_ms[-1],
                worst_offset_ms=max(abs(o) for o in offsets_ms),
            )
        )
    return result


async def _tick_every(seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)


async def bare_timer(duration: float, ticker: bool) -> list[TrackFigures]:
    """A bare asyncio loop waking itself with call_at at t0 + n * 20 ms; with ``ticker``, plus a 100 ms timer."""
    loop = asyncio.get_running_loop()
    wakes: list[tuple[int, float]] = []
    label = "bare timer + 100 ms tick" if ticker else "bare asyncio timer"
    progress = Progress(label)
    tick_task = asyncio.create_task(_tick_every(0.1)) if ticker else None
    await asyncio.sleep(0.0137)  # an arbitrary phase between the two timers
    t0 = loop.time()
    for tick in range(round(duration / FRAME_S)):
        deadline = t0 + tick * FRAME_S
        if deadline > loop.time():
            waiter: asyncio.Future[None] = loop.create_future()
            loop.call_at(deadline, waiter.set_result, None)
            await waiter
        wakes.append((tick + 1, time.perf_counter()))
        progress.tick(f"{tick + 1} ticks")
    if tick_task is not None:
        tick_task.cancel()
    return track_figures(f"({label})", {"-": wakes})


def measure(emulator: Emulator, stream_track: str, duration: float) -> list[TrackFigures]:
    receiver = ReceiverProcess(expected=1, timeout=duration + 30)
    try:
        body = json.dumps(
            {
                "stream_url": f"ws://{HOST}:{receiver.port}/stream",
                "stream_track": stream_track,
                "command_id": f"pacing-{stream_track}",
            }
        )
        status, text = post_json(emulator.port, streaming_start_path(f"bench-pacing-{stream_track}"), body)
        if status != 200:
            raise HarnessError(f"streaming_start answered {status}: {text}\n{emulator.log_tail()}")
        print(f"[pacing {stream_track}] streaming {duration:g} s ...", file=sys.stderr, flush=True)
        cpu_before, wall_before = emulator.cpu_seconds(), time.monotonic()
        logs = receiver.results()
        cpu = (emulator.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    except RuntimeError as exc:
        raise HarnessError(str(exc)) from None
    finally:
        receiver.kill()
    if not logs or not logs[0].arrived:
        raise HarnessError(f"no media frames arrived\n{emulator.log_tail()}")
    result = figures(stream_track, logs[0])
    for track in result:
        track.emulator_cpu = cpu
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of audio per stream (default 60)")
    parser.add_argument(
        "--track",
        dest="tracks",
        action="append",
        choices=("inbound_track", "both_tracks"),
        help="stream_track to measure (repeatable; default: inbound_track then both_tracks)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first measure a bare asyncio call_at loop, without and with a 100 ms tick (reported only)",
    )
    add_check_flag(parser)
    args = parser.parse_args()
    tracks: list[str] = args.tracks or ["inbound_track", "both_tracks"]

    print(f"pacing: {machine()}")
    print(
        f"one stream at a time, speed 1, {args.duration:g} s silence scenario, PCMU; "
        f"minimal receiver in a separate process (bench/_wsrecv.py, on {EVENT_LOOP})"
    )
    results: list[TrackFigures] = []
    baseline: list[TrackFigures] = []
    if args.baseline:
        baseline += asyncio.run(bare_timer(args.duration, ticker=False))
        baseline += asyncio.run(bare_timer(args.duration, ticker=True))
    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as tmp:
        write_silence_scenario(Path(tmp), "pacing", args.duration)
        with Emulator(["--speed", "1", "--scenario-dir", tmp, "--scenario", "pacing"]) as emulator:
            for stream_track in tracks:
                results.extend(measure(emulator, stream_track, args.duration))
    print()
    print_table(
        (
            "stream_track",
            "track",
            "frames",
            "missing",
            "gap p50",
            "gap p99",
            "gap max",
            "p99 |gap-20|",
            "drift last",
            "max |offset|",
            "late p50",
            "late p99",
            "late max",
            "emulator CPU",
        ),
        [
            (
                r.stream_track,
                r.track,
                str(r.frames),
                str(r.missing),
                f"{r.gap_p50_ms:.3f} ms",
                f"{r.gap_p99_ms:.3f} ms",
                f"{r.gap_max_ms:.3f} ms",
                f"{r.dev_p99_ms:.3f} ms",
                f"{r.drift_ms:+.3f} ms",
                f"{r.worst_offset_ms:.3f} ms",
                "-" if r.late_p50_ms != r.late_p50_ms else f"{r.late_p50_ms:.3f} ms",
                "-" if r.late_p99_ms != r.late_p99_ms else f"{r.late_p99_ms:.3f} ms",
                "-" if r.late_max_ms != r.late_max_ms else f"{r.late_max_ms:.3f} ms",
                "-" if r.emulator_cpu != r.emulator_cpu else f"{r.emulator_cpu:.1%}",
            )
            for r in [*baseline, *results]
        ],
    )
    checks = Checks()
    for r in results:
        label = f"{r.stream_track}/{r.track}"
        checks.add(
            f"p99 |gap - 20 ms| ({label})",
            f"<= {GAP_TARGET_MS:g} ms",
            f"{r.dev_p99_ms:.3f} ms",
            r.dev_p99_ms <= GAP_TARGET_MS,
        )
        checks.add(
            f"|drift| of last frame ({label})",
            f"<= {DRIFT_TARGET_MS:g} ms",
            f"{abs(r.drift_ms):.3f} ms",
            abs(r.drift_ms) <= DRIFT_TARGET_MS,
        )
        checks.add(f"missing frames ({label})", "0", str(r.missing), r.missing == 0)
    return checks.report(args.check)


if __name__ == "__main__":
    run_main(main, "pacing")
