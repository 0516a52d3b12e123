"""Shared bench plumbing: free ports, the emulator as a subprocess, readiness polling, stats, tables.

Everything stays on 127.0.0.1. The emulator runs as ``<repo>/.venv/bin/python -m emulator serve`` (or
the current interpreter when there is no ``.venv``) with ``--log-level warning``, from the repository
root, so ``-m emulator`` imports that tree's package. ``BENCH_EMULATOR_ROOT=DIR`` runs it from another
source tree instead (e.g. an export of a commit: ``git archive HEAD | tar -x -C DIR``). Its
stdout/stderr go to a temporary log file whose tail is printed if it fails.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# BENCH_PYTHON=PATH runs the emulator with another interpreter, e.g. of a venv holding only the runtime
# dependencies, as users install it (.venv also has the test tools: httpx then imports rich, +0.1 s).
PYTHON = os.environ.get("BENCH_PYTHON") or (str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable)
# The source tree whose ``emulator`` package is benchmarked (the subprocess's working directory).
EMULATOR_ROOT = Path(os.environ.get("BENCH_EMULATOR_ROOT") or REPO).resolve()
AUTH_HEADER = "Bearer anykey"
# The emulator exits 0 after a graceful SIGTERM. Older trees (BENCH_EMULATOR_ROOT) let uvicorn re-raise
# the signal, ending "killed by SIGTERM" (-15 in Python): both count as clean here.
CLEAN_EXIT = (0, -signal.SIGTERM)


class HarnessError(RuntimeError):
    """The emulator did not start, did not answer, or did not stop cleanly."""


# -- ports and HTTP ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def closed_port() -> socket.socket:
    """A socket bound to a 127.0.0.1 port but not listening: connecting to it is refused at once.

    Keep the returned socket open for as long as the port must stay dead (nobody else can take it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    return sock


def probe(port: int, timeout: float = 0.5) -> int | None:
    """The status code of one ``GET /`` answer from 127.0.0.1:port, or None if nothing answers yet."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = sock.recv(64)
    except OSError:
        return None
    parts = data.split(maxsplit=2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        return None
    return int(parts[1])


def post_json(port: int, path: str, body: str, timeout: float = 10.0) -> tuple[int, str]:
    """POST a JSON body with the bench's Bearer key; returns (status, response text)."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(
            "POST", path, body=body, headers={"Authorization": AUTH_HEADER, "Content-Type": "application/json"}
        )
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def streaming_start_path(call_control_id: str) -> str:
    return f"/v2/calls/{call_control_id}/actions/streaming_start"


# -- the emulator subprocess -------------------------------------------------------------------


def write_silence_scenario(directory: Path, name: str, seconds: float) -> Path:
    """A scenario file ``<directory>/<name>.yaml``: ``seconds`` of inbound silence (outbound: silence)."""
    path = directory / f"{name}.yaml"
    ms = round(seconds * 1000)
    path.write_text(f"description: {seconds:g} s of silence for the benchmarks.\ninbound:\n  - silence: {{ms: {ms}}}\n")
    return path


@dataclass
class Emulator:
    """``python -m emulator serve --port P --log-level L *args`` as a context manager.

    ``start()`` returns once the server answers HTTP (bounded by ``ready_timeout``); ``stop()`` sends
    SIGTERM, waits (bounded), and raises HarnessError unless the exit status is clean.
    """

    args: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    log_level: str = "warning"
    ready_timeout: float = 15.0
    stop_timeout: float = 15.0
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() just before the process was spawned
    ready_at: float = 0.0  # time.monotonic() when the first HTTP answer arrived
    returncode: int | None = None
    _log: IO[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [
            PYTHON,
            "-m",
            "emulator",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            self.log_level,
            *self.args,
        ]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, poll_interval: float = 0.002) -> float:
        """Spawn the emulator and poll until it answers HTTP; returns seconds from spawn to that answer."""
        self._log = tempfile.NamedTemporaryFile(prefix="telnyx-emulator-bench-", suffix=".log")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command, cwd=EMULATOR_ROOT, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = self.started_at + self.ready_timeout
        while True:
            if probe(self.port) is not None:
                self.ready_at = time.monotonic()
                return self.ready_at - self.started_at
            if self.process.poll() is not None:
                raise HarnessError(f"emulator exited with status {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise HarnessError(f"emulator did not answer within {self.ready_timeout:g} s:\n{self.log_tail()}")
            time.sleep(poll_interval)

    def stop(self) -> int:
        """SIGTERM, wait up to ``stop_timeout``; HarnessError unless the exit status is clean."""
        if self.process is None or self.returncode is not None:
            return self.returncode or 0
        self.process.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise HarnessError(
                f"emulator did not exit within {self.stop_timeout:g} s of SIGTERM:\n{self.log_tail()}"
            ) from None
        if self.returncode not in CLEAN_EXIT:
            raise HarnessError(f"emulator exited with status {self.returncode}:\n{self.log_tail()}")
        return self.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.returncode = self.process.wait(5)

    def log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_lines(self) -> int:
        return len(self.log_text().splitlines())

    def cpu_seconds(self) -> float:
        """User + system CPU time the emulator process has used so far (from /proc/PID/stat)."""
        return proc_cpu_seconds(self.pid)

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.stop()
            else:
                self.kill()
        finally:
            if self._log is not None:
                self._log.close()


def proc_cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status, e.g. ``VmRSS``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# -- figures -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of a non-empty sequence."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    print(line(headers))
    print(line(["-" * width for width in widths]))
    for row in rows:
        print(line(row))


@dataclass
class Checks:
    """Targets of one script: a row per figure; ``exit_status`` is 1 if any target was missed."""

    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def add(self, figure: str, target: str, measured: str, ok: bool) -> None:
        self.rows.append((figure, target, measured, ok))

    def report(self, check: bool) -> int:
        print(f"\nload average at the end: {load_average()}")
        if not self.rows:
            return 0
        print_table(
            ("figure", "target", "measured", "result"),
            [(f, t, m, "met" if ok else "MISSED") for f, t, m, ok in self.rows],
        )
        missed = [f for f, _t, _m, ok in self.rows if not ok]
        if missed and check:
            print(f"\n{len(missed)} target(s) missed: {', '.join(missed)}", file=sys.stderr)
            return 1
        if missed:
            print(f"\n{len(missed)} target(s) missed (--no-check: reporting only)", file=sys.stderr)
        return 0


class Progress:
    """At most one line every ``every`` seconds on stderr."""

    def __init__(self, label: str, every: float = 10.0) -> None:
        self.label = label
        self.every = every
        self.start = time.monotonic()
        self._next = self.start + every

    def tick(self, detail: str = "") -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            print(f"[{self.label}] {now - self.start:5.0f} s {detail}", file=sys.stderr, flush=True)


def load_average() -> str:
    """The 1/5/15-minute load averages, to tell a busy machine from a slow emulator."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    tree = "" if EMULATOR_ROOT == REPO else f"; emulator from {EMULATOR_ROOT}"
    return f"{os.cpu_count()} CPUs ({cpu}), Python {sys.version.split()[0]}, load average {load_average()}{tree}"


def add_check_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-check", dest="check", action="store_false", help="only report: exit 0 even if a target is missed"
    )


def run_main(main: Callable[[], int], name: str) -> NoReturn:
    """Exit with ``main()``'s status; a HarnessError (the emulator did not start, answer or stop) is one
    line on stderr and status 2."""
    try:
        sys.exit(main())
    except HarnessError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
