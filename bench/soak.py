"""Soak: call churn for DURATION seconds (default 10 minutes); the emulator's RSS and open files must stay flat.

WORKERS callers each loop: dial a call with a stream_url (both tracks), wait for the callee to answer
and the stream to run for HOLD seconds, hang up. The emulator runs at speed 1 with its default
scenario, sends every webhook (call.initiated, call.answered, streaming.started, streaming.stopped,
call.hangup) to a receiver in this process, and streams to a WebSocket target in this process that
reads every frame. Every INTERVAL seconds the bench prints the emulator's RSS (VmRSS), its open file
descriptors, and the calls completed so far.

Figures: the emulator idle (no stream running, the bench's HTTP connections closed) after a warm-up
of WARMUP seconds of churn (while the per-key history fills and the webhook client opens its
connections), against idle at the end: RSS growth and open files. Targets: RSS growth <= 10 MB, no
more open files than after the warm-up besides the webhook client's idle connections to the receiver
(kept for reuse, at most 20), no failed command.

    .venv/bin/python bench/soak.py                  # 10 minutes
    .venv/bin/python bench/soak.py --duration 120   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field

import httpx
from _harness import (
    AUTH_HEADER,
    HOST,
    Checks,
    Emulator,
    add_check_flag,
    load_average,
    machine,
    proc_status_kb,
    run_main,
)
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

RSS_GROWTH_TARGET_MB = 10.0
# The emulator's default --history (1000 ended calls per key), plus the tenth it may run over between
# its forgetting passes (emulator/calls/store.py).
MAX_KEPT_CALLS = 1100
WEBHOOK_POOL = 20  # httpx keeps at most 20 idle connections per client (max_keepalive_connections)


@dataclass
class Sample:
    at: float  # seconds since the churn started
    rss_mb: float
    fds: int
    calls: int


@dataclass
class Churn:
    calls: int = 0  # dialed, answered, streamed and hung up
    failures: list[str] = field(default_factory=list)
    frames: int = 0  # frames the stream target read
    webhooks: int = 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_to(pid: int, port: int) -> int:
    """How many of the process's open files are TCP connections to 127.0.0.1:``port``.

    The webhook client keeps idle connections to the receiver for reuse (httpx keeps up to 20 and closes
    an expired one only when it next sends), so how many are open when the emulator goes idle depends on
    how many deliveries overlapped last: they are counted apart, not as a leak."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as file:
                lines = file.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:  # rem_address is HEXIP:HEXPORT
                inodes.add(fields[9])
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


async def webhook_receiver(churn: Churn) -> asyncio.Server:
    """An HTTP/1.1 server that answers every POST 200 at once, keeping connections alive."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                await reader.readexactly(length)
                churn.webhooks += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, HOST, 0)


async def caller(client: httpx.AsyncClient, stream_url: str, hold: float, until: float, churn: Churn, n: int) -> None:
    dial = {
        "connection_id": "soak",
        "to": "+13125550122",
        "from": "+13125550111",
        "stream_url": stream_url,
        "stream_track": "both_tracks",
    }
    while time.monotonic() < until:
        try:
            response = await client.post("/v2/calls", json=dial)
            if response.status_code != 200:
                churn.failures.append(f"dial: {response.status_code} {response.text[:200]}")
                await asyncio.sleep(1)
                continue
            call_control_id = response.json()["data"]["call_control_id"]
            await asyncio.sleep(1.0 + hold)  # the callee rings 1 s, then the stream runs
            hangup = await client.post(f"/v2/calls/{call_control_id}/actions/hangup", json={})
            if hangup.status_code != 200:
                churn.failures.append(f"hangup: {hangup.status_code} {hangup.text[:200]}")
            else:
                churn.calls += 1
        except httpx.HTTPError as exc:
            churn.failures.append(f"caller {n}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1)


async def churn_phase(
    base: str, stream_url: str, args: argparse.Namespace, seconds: float, churn: Churn, pid: int, t0: float
) -> list[Sample]:
    """``args.workers`` callers for ``seconds``, sampling every ``args.interval``; the client is closed after."""
    samples = []
    until = time.monotonic() + seconds
    headers = {"Authorization": AUTH_HEADER}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        callers = [
            asyncio.create_task(caller(client, stream_url, args.hold, until, churn, n)) for n in range(args.workers)
        ]
        while not all(task.done() for task in callers):
            await asyncio.wait(callers, timeout=args.interval)
            sample = Sample(time.monotonic() - t0, proc_status_kb(pid, "VmRSS") / 1024, open_fds(pid), churn.calls)
            samples.append(sample)
            print_row(sample)
        for task in callers:
            task.result()
    return samples


async def settle(base: str, pid: int, hook_port: int, seconds: float = 30) -> tuple[int, int]:
    """Wait until no stream runs and the emulator's open files stop changing; returns their count, and how
    many of them are the webhook client's idle connections to the receiver."""
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": AUTH_HEADER}) as control:
        while time.monotonic() < deadline:
            streams = (await control.get("/_emulator/streams")).json()["data"]
            if not any(s["state"] in ("connecting", "streaming") for s in streams):
                break
            await asyncio.sleep(0.2)
    previous = -1
    while (fds := open_fds(pid)) != previous and time.monotonic() < deadline:
        previous = fds
        await asyncio.sleep(0.5)
    return fds, sockets_to(pid, hook_port)


async def run(args: argparse.Namespace) -> int:
    churn = Churn()

    async def drain(ws: ServerConnection) -> None:
        try:
            async for _ in ws:
                churn.frames += 1
        except ConnectionClosed:
            pass

    hooks = await webhook_receiver(churn)
    hook_port = hooks.sockets[0].getsockname()[1]
    async with serve(drain, HOST, 0, compression=None, max_size=None) as target:
        stream_url = f"ws://{HOST}:{target.sockets[0].getsockname()[1]}/stream"
        emulator_args = ["--speed", "1", "--webhook-url", f"http://{HOST}:{hook_port}/webhooks"]
        with Emulator(args=emulator_args) as emulator:
            pid = emulator.pid
            base = f"http://{HOST}:{emulator.port}"
            t0 = time.monotonic()
            print_row_header()
            print_row(Sample(0.0, proc_status_kb(pid, "VmRSS") / 1024, open_fds(pid), 0))
            # Warm-up: the per-key history fills, the webhook client's pool opens its connections.
            samples = await churn_phase(base, stream_url, args, args.warmup, churn, pid, t0)
            warm_fds, warm_pool = await settle(base, pid, hook_port)
            warm_rss = proc_status_kb(pid, "VmRSS") / 1024
            warm_calls, warm_at = churn.calls, time.monotonic() - t0
            print(f"{'':7}  {warm_rss:9.1f}  {warm_fds:10d}  (idle after warm-up; {warm_pool} webhook connections)")
            samples += await churn_phase(base, stream_url, args, args.duration - args.warmup, churn, pid, t0)
            end_fds, end_pool = await settle(base, pid, hook_port)
            rss_end = proc_status_kb(pid, "VmRSS") / 1024
            print(f"{'':7}  {rss_end:9.1f}  {end_fds:10d}  (idle at the end; {end_pool} webhook connections)")
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": AUTH_HEADER}) as control:
                kept = len((await control.get("/_emulator/calls")).json()["data"])
    hooks.close()
    await hooks.wait_closed()

    growth = rss_end - warm_rss
    measured_calls = churn.calls - warm_calls
    print()
    print(f"calls completed: {churn.calls} ({churn.calls / args.duration:.1f}/s)")
    print(f"frames read by the target: {churn.frames:,}; webhooks received: {churn.webhooks:,}")
    print(f"peak RSS: {max(s.rss_mb for s in samples):.1f} MB")
    for failure in churn.failures[:5]:
        print(f"  failure: {failure}")
    checks = Checks()
    checks.add("failed commands", "0", str(len(churn.failures)), not churn.failures)
    checks.add("calls kept on the control plane", f"<= {MAX_KEPT_CALLS}", str(kept), kept <= MAX_KEPT_CALLS)
    checks.add(
        f"idle RSS after warm-up ({warm_at:.0f} s) -> at the end",
        f"<= +{RSS_GROWTH_TARGET_MB:g} MB",
        f"{warm_rss:.1f} -> {rss_end:.1f} MB ({growth:+.1f} MB over {measured_calls} calls)",
        growth <= RSS_GROWTH_TARGET_MB,
    )
    checks.add(
        "idle open files after warm-up -> at the end, besides the webhook pool",
        "no growth",
        f"{warm_fds - warm_pool} -> {end_fds - end_pool} (pool {warm_pool} -> {end_pool})",
        end_fds - end_pool <= warm_fds - warm_pool,
    )
    checks.add("idle webhook connections kept for reuse", f"<= {WEBHOOK_POOL}", str(end_pool), end_pool <= WEBHOOK_POOL)
    return checks.report(args.check)


def print_row_header() -> None:
    print(f"{'t (s)':>7}  {'RSS (MB)':>9}  {'open files':>10}  {'calls done':>10}", flush=True)


def print_row(sample: Sample) -> None:
    print(f"{sample.at:7.0f}  {sample.rss_mb:9.1f}  {sample.fds:10d}  {sample.calls:10d}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of churn (default 600)")
    parser.add_argument("--workers", type=int, default=20, help="calls in flight at once (default 20)")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds each call streams before hangup (default 2)")
    parser.add_argument("--interval", type=float, default=30, help="seconds between samples (default 30)")
    parser.add_argument("--warmup", type=float, default=120, help="seconds of churn before the baseline (default 120)")
    add_check_flag(parser)
    args = parser.parse_args()
    print(f"soak: {machine()}")
    print(
        f"{args.workers} callers, {args.duration:g} s: dial with stream_url (both tracks), ring 1 s, "
        f"stream {args.hold:g} s at speed 1, hang up; load average {load_average()}"
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    run_main(main, "soak")
