"""``telnyx-emulator load``: the command line of the load mode (docs/load.md).

Exit status: 0 when the run finished and met every ``--slo``; 1 when an SLO was breached; 2 for a usage error
(a bad flag, an unknown SLO, ``--report`` without matplotlib); 3 when the run could not run (the emulator
could not be started or reached); 130 when Ctrl-C stopped it (the summary and files are still written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from emulator import PROG
from emulator.load.console import ProgressLine, format_summary
from emulator.load.driver import LoadConfig, LoadRun
from emulator.load.plan import LoadPlan, PlanError, ScenarioMix
from emulator.load.stats import Slo, parse_slo, summarize

EXIT_BREACHED, EXIT_USAGE, EXIT_NO_RUN, EXIT_INTERRUPTED = 1, 2, 3, 130
_START_TIMEOUT_S = 30.0

EPILOG = f"""\
examples:
  {PROG} load --webhook-url http://127.0.0.1:5000/webhooks --calls 100 --concurrency 20
  {PROG} load --webhook-url http://127.0.0.1:5000/webhooks --rate 5 --ramp 10 --duration 60 \\
      --scenario ivr-menu:3 --scenario default:1 --report load.html --slo response_p95_ms=1500
  {PROG} load --emulator http://127.0.0.1:8000 --api-key KEY --calls 20 --json calls.json

Without --emulator it starts an emulator of its own on --port (your app sends its commands there, with the
API key given here) and stops it at the end; that emulator also reads the {PROG.upper().replace("-", "_")}_*
variables, as serve does. Exit status: 0 every SLO met, 1 an SLO breached, 2 usage error, 3 no emulator,
130 interrupted. docs/load.md explains every figure.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = subparsers.add_parser(
        "load",
        help="ring the app with many simulated calls at once and measure its conversations",
        description="Ring your app with many simulated incoming calls, each playing a scenario, and measure how "
        "fast it answers and responds: percentiles of every conversation metric, errors by kind, optional "
        "JSON and HTML report, and SLOs for CI.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = load.add_argument_group("how many calls, and how they arrive")
    what.add_argument("--calls", type=int, metavar="N", help="calls to start (default 10 unless --duration)")
    what.add_argument("--duration", type=float, metavar="S", help="start calls for this many seconds")
    what.add_argument("--concurrency", type=int, metavar="C", help="calls up at once (default 10 without --rate)")
    what.add_argument("--rate", type=float, metavar="R", help="calls started per second")
    what.add_argument("--ramp", type=float, default=0.0, metavar="S", help="grow rate or concurrency from 0 over S s")
    what.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME[:WEIGHT]",
        help="what callers say (a name or .yaml path); repeat for a mix, weighted (default: the emulator's default)",
    )
    what.add_argument(
        "--from",
        dest="from_",
        default="+13125559000",
        metavar="NUMBER",
        help="first caller's number; each call the next (default %(default)s)",
    )
    what.add_argument(
        "--to", default="+13125550123", metavar="NUMBER", help="the app's number that is called (default %(default)s)"
    )
    what.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the scenario mix (default %(default)s)")
    where = load.add_argument_group("the app and the emulator")
    where.add_argument("--webhook-url", metavar="URL", help="the app's webhook URL (needed without --emulator)")
    where.add_argument("--emulator", metavar="URL", help="use this running emulator (env TELNYX_EMULATOR_URL)")
    where.add_argument(
        "--api-key", metavar="KEY", help="the key your app uses (default env TELNYX_API_KEY, else 'emulator')"
    )
    where.add_argument(
        "--port", type=int, help="port of the emulator it starts (default 8000; env TELNYX_EMULATOR_PORT)"
    )
    limits = load.add_argument_group("limits")
    limits.add_argument(
        "--answer-timeout", type=float, default=30.0, metavar="S", help="ringing longer is unanswered (default 30)"
    )
    limits.add_argument(
        "--call-limit", type=float, default=300.0, metavar="S", help="a call up longer is cut (default 300)"
    )
    limits.add_argument(
        "--settle",
        type=float,
        default=3.0,
        metavar="S",
        help="after the last call, how long late webhook retries and commands still count (default 3)",
    )
    out = load.add_argument_group("results")
    out.add_argument("--json", type=Path, metavar="FILE", help="write every call's record and the summary")
    out.add_argument("--report", type=Path, metavar="FILE.html", help="write an HTML report with plots")
    out.add_argument(
        "--slo", action="append", default=[], metavar="NAME=LIMIT", help="e.g. response_p95_ms=1500; repeatable"
    )
    out.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    try:
        plan = LoadPlan(
            calls=args.calls,
            duration_s=args.duration,
            rate=args.rate,
            concurrency=args.concurrency,
            ramp_s=args.ramp,
            mix=ScenarioMix.parse(args.scenario),
        )
        slos = [parse_slo(text) for text in args.slo]
        _check_options(args)
    except (PlanError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.report is not None:
        from emulator.load.report import ReportUnavailable, require_matplotlib

        try:
            require_matplotlib()
        except ReportUnavailable as exc:
            return _fail(str(exc), EXIT_USAGE)
    try:
        port = args.port if args.port is not None else int(environ.get("TELNYX_EMULATOR_PORT", "8000"))
    except ValueError:
        return _fail(f"TELNYX_EMULATOR_PORT: not a port: {environ['TELNYX_EMULATOR_PORT']!r}", EXIT_USAGE)
    running = args.emulator or environ.get("TELNYX_EMULATOR_URL")
    if running is None and not args.webhook_url:
        return _fail("give --webhook-url (your app's), or --emulator to use a running emulator", EXIT_USAGE)
    key = args.api_key or environ.get("TELNYX_API_KEY") or "emulator"
    try:
        with _emulator(running, port, args.webhook_url, _history(plan)) as base:
            config = LoadConfig(
                emulator=base,
                api_key=key,
                plan=plan,
                webhook_url=args.webhook_url,
                from_number=args.from_,
                to=args.to,
                seed=args.seed,
                answer_timeout_s=args.answer_timeout,
                call_limit_s=args.call_limit,
                settle_s=args.settle,
                own_emulator=running is None,
            )
            progress = ProgressLine(sys.stderr, enabled=not args.quiet)
            try:
                results = asyncio.run(_drive(LoadRun(config, on_progress=progress.update)))
            finally:
                progress.close()
    except _NoEmulator as exc:
        return _fail(str(exc), EXIT_NO_RUN)
    return _finish(results, slos, args)


def _check_options(args: argparse.Namespace) -> None:
    if not re.fullmatch(r"\+?\d{4,15}", args.from_):
        raise ValueError(f"--from {args.from_!r}: expected a number (+13125559000): call k calls from it plus k")
    for flag, value in (("--answer-timeout", args.answer_timeout), ("--call-limit", args.call_limit)):
        if not value > 0:
            raise ValueError(f"{flag}: {value:g} is out of range (seconds, above 0)")
    if not args.settle >= 0:
        raise ValueError(f"--settle: {args.settle:g} is out of range (seconds, 0 or more)")


def _finish(results: dict[str, Any], slos: list[Slo], args: argparse.Namespace) -> int:
    summary = results["summary"] = summarize(results["calls"], slos)
    print(format_summary(results, summary), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"every call's record: {args.json}")
    if args.report is not None:
        from emulator.load.report import render_report

        args.report.write_text(render_report(results))
        print(f"report: {args.report}")
    if results["run"]["aborted"]:
        print(f"{PROG} load: error: the run stopped early: {results['run']['aborted']}", file=sys.stderr)
        # Not one call created: the run's own request is wrong (a scenario that does not exist, say).
        return EXIT_USAGE if summary["calls"]["started"] == 0 else EXIT_NO_RUN
    if results["run"]["interrupted"]:
        return EXIT_INTERRUPTED
    return 0 if summary["ok"] else EXIT_BREACHED


async def _drive(run: LoadRun) -> dict[str, Any]:
    """Run the plan; the first Ctrl-C stops it gracefully (calls still up hang up), a second one at once."""
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        if not run.stopping.is_set():
            note = "stopping: no new calls; hanging up the calls still up (Ctrl-C again to quit)"
            print(f"\n{PROG}: {note}", file=sys.stderr)
        run.stop()  # the second time: at once

    with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises KeyboardInterrupt instead
        loop.add_signal_handler(signal.SIGINT, interrupt)
    return await run.run()


class _NoEmulator(Exception):
    pass


def _history(plan: LoadPlan) -> int:
    """The ended calls the run's own emulator keeps: all of the run's, so none is forgotten before it is read
    (serve's default, 1000, unless the run has more; a run by duration alone: 20000)."""
    return max(1000, min(plan.calls or 20_000, 100_000))


@contextlib.contextmanager
def _emulator(running: str | None, port: int, webhook_url: str | None, history: int) -> Iterator[str]:
    """The emulator's base URL: the running one, checked; or one started here, stopped when the run is over."""
    if running is not None:
        base = running.rstrip("/")
        try:
            httpx.get(f"{base}/_emulator/health", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            raise _NoEmulator(f"cannot reach the emulator at {base}: {exc}") from None
        yield base
        return
    log = tempfile.NamedTemporaryFile("w+", prefix="telnyx-emulator-load-", suffix=".log", delete=False)
    with socket.socket() as probe:  # a server already there (your own emulator?) would answer in its place
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            why = f"cannot start an emulator on port {port}: {exc.strerror or exc}"
            raise _NoEmulator(f"{why}; use --emulator URL to load a running one, or another --port") from None
    command = [sys.executable, "-m", "emulator", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--history", str(history)]
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    # A session of its own: Ctrl-C in the terminal stops the run, which then hangs up and stops the emulator.
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _await_health(process, base, log.name)
        print(f"{PROG}: started an emulator at {base}/v2 (its log: {log.name})", file=sys.stderr)
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _await_health(process: subprocess.Popen[bytes], base: str, log_path: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "".join(Path(log_path).read_text().splitlines(keepends=True)[-5:]).strip()
            raise _NoEmulator(f"the emulator did not start (exit {process.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/_emulator/health", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise _NoEmulator(f"the emulator did not answer at {base} within {_START_TIMEOUT_S:g} s (log: {log_path})")


def _fail(message: str, status: int) -> int:
    print(f"{PROG} load: error: {message}", file=sys.stderr)
    return status


def free_port() -> int:
    """A port nothing listens on now (tests start the load's own emulator there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
