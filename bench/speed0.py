"""Speed 0: the wall time to stream a whole DURATION-second scenario to a receiver, and frames/s.

The emulator runs with ``--speed 0`` and a DURATION-second silence scenario written to a temporary
``--scenario-dir``. A websockets receiver in a separate process (multiprocessing) records, per
connection, when it was accepted and when the first/last media frame, the stop frame and the close
arrived (time.monotonic, which is system-wide on Linux, so comparable across processes). The wall
time of a run is from just before the streaming_start POST to the end of the close handshake.

Target: <= 0.3 s for a 60 s scenario (median of the runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from _harness import (
    HOST,
    Checks,
    Emulator,
    HarnessError,
    add_check_flag,
    machine,
    post_json,
    print_table,
    run_main,
    streaming_start_path,
    write_silence_scenario,
)

TARGET_S = 0.3


# -- the receiver process ----------------------------------------------------------------------


async def _receive(out: Connection, connections: int, timeout: float) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    done = asyncio.Event()
    remaining = connections

    async def handler(ws: ServerConnection) -> None:
        nonlocal remaining
        clock = time.monotonic
        accepted = clock()
        first_media = last_media = stop = 0.0
        media = messages = 0
        async for message in ws:
            now = clock()
            messages += 1
            # Media frames come from a fixed template; a substring test keeps the receiver cheap.
            if '"event":"media"' in message:
                media += 1
                if media == 1:
                    first_media = now
                last_media = now
            elif json.loads(message).get("event") == "stop":
                stop = now
        out.send(
            {
                "accepted": accepted,
                "first_media": first_media,
                "last_media": last_media,
                "stop": stop,
                "closed": clock(),
                "media": media,
                "messages": messages,
                "close_code": ws.close_code,
            }
        )
        remaining -= 1
        if remaining == 0:
            done.set()

    async with serve(handler, HOST, 0, compression=None, max_size=None) as server:
        out.send(server.sockets[0].getsockname()[1])
        await asyncio.wait_for(done.wait(), timeout)


def receiver_process(out: Connection, connections: int, timeout: float) -> None:
    try:
        asyncio.run(_receive(out, connections, timeout))
    except TimeoutError:
        out.send({"error": f"receiver: fewer than {connections} streams within {timeout:g} s"})
    finally:
        out.close()


# -- the bench ---------------------------------------------------------------------------------


@dataclass
class Run:
    wall_s: float  # POST sent -> close handshake done
    connect_s: float  # POST sent -> connection accepted
    stream_s: float  # first media -> stop frame
    media: int
    close_code: int | None

    @property
    def fps(self) -> float:
        return self.media / self.wall_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of audio in the scenario (default 60)")
    parser.add_argument("--runs", type=int, default=5, help="streams, one after another (default 5)")
    parser.add_argument("--track", default="inbound_track", choices=("inbound_track", "both_tracks"))
    add_check_flag(parser)
    args = parser.parse_args()
    expected_media = round(args.duration * 1000 / 20) * (2 if args.track == "both_tracks" else 1)

    print(f"speed0: {machine()}")
    print(
        f"--speed 0, {args.duration:g} s silence scenario (PCMU, {args.track}: {expected_media} media frames), "
        f"{args.runs} streams one after another; receiver in a separate process"
    )
    context = multiprocessing.get_context("spawn")
    results, sender = context.Pipe(duplex=False)
    timeout = 30.0 + 5.0 * args.runs
    receiver = context.Process(target=receiver_process, args=(sender, args.runs, timeout), daemon=True)
    receiver.start()
    sender.close()
    runs: list[Run] = []
    try:
        if not results.poll(15):
            raise HarnessError("the receiver process did not start")
        ws_port: int = results.recv()
        with tempfile.TemporaryDirectory(prefix="bench-speed0-") as tmp:
            write_silence_scenario(Path(tmp), "speed0", args.duration)
            with Emulator(["--speed", "0", "--scenario-dir", tmp, "--scenario", "speed0"]) as emulator:
                for index in range(args.runs):
                    body = json.dumps(
                        {
                            "stream_url": f"ws://{HOST}:{ws_port}/stream",
                            "stream_track": args.track,
                            "command_id": f"speed0-{index}",
                        }
                    )
                    posted = time.monotonic()
                    status, text = post_json(emulator.port, streaming_start_path(f"bench-speed0-{index}"), body)
                    if status != 200:
                        raise HarnessError(f"streaming_start answered {status}: {text}\n{emulator.log_tail()}")
                    if not results.poll(30):
                        raise HarnessError(f"run {index + 1}: the stream did not end within 30 s")
                    got = results.recv()
                    if "error" in got:
                        raise HarnessError(got["error"])
                    run = Run(
                        wall_s=got["closed"] - posted,
                        connect_s=got["accepted"] - posted,
                        stream_s=got["stop"] - got["first_media"],
                        media=got["media"],
                        close_code=got["close_code"],
                    )
                    runs.append(run)
                    print(
                        f"[speed0] run {index + 1}/{args.runs}: {run.wall_s * 1000:.0f} ms, {run.media} media frames",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        receiver.join(5)
        if receiver.is_alive():
            receiver.kill()
            receiver.join(5)
    print()
    print_table(
        ("run", "wall (POST -> close)", "POST -> connected", "first media -> stop", "media", "frames/s", "close"),
        [
            (
                str(i + 1),
                f"{r.wall_s * 1000:.1f} ms",
                f"{r.connect_s * 1000:.1f} ms",
                f"{r.stream_s * 1000:.1f} ms",
                str(r.media),
                f"{r.fps:,.0f}",
                str(r.close_code),
            )
            for i, r in enumerate(runs)
        ],
    )
    wall = statistics.median(r.wall_s for r in runs)
    fps = statistics.median(r.fps for r in runs)
    print(f"\nmedian: {wall * 1000:.1f} ms wall, {fps:,.0f} media frames/s ({args.duration / wall:,.0f}x real time)")
    checks = Checks()
    checks.add(
        f"wall time, {args.duration:g} s scenario at speed 0 (median)",
        f"<= {TARGET_S:g} s",
        f"{wall:.3f} s",
        wall <= TARGET_S,
    )
    complete = all(r.media == expected_media and r.close_code == 1000 for r in runs)
    checks.add(
        "every media frame delivered, closed 1000", f"{expected_media} frames", "yes" if complete else "no", complete
    )
    return checks.report(args.check)


if __name__ == "__main__":
    run_main(main, "speed0")
