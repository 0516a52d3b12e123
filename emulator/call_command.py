"""``telnyx-emulator call``: ring the app from a running emulator, and (``--follow``) watch the call's webhooks.

While it follows, keys pressed in the terminal act as the caller (``POST /_emulator/calls/{id}/caller``), for a
person trying an IVR by hand: 0-9, ``*``, ``#`` and A-D press that DTMF key, ``h`` hangs up. The terminal is put in
cbreak mode (each key read at once, not echoed; Ctrl-C still stops) and restored on exit. Keys are read only when
stdin is a terminal and the platform has ``termios`` (not Windows).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from emulator import PROG

DTMF_KEYS = frozenset("0123456789*#ABCD")
KEYS_HINT = "keys: 0-9 * # A-D press DTMF, h hangs up, Ctrl-C stops following"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    call = subparsers.add_parser(
        "call",
        help="simulate an incoming call on a running emulator",
        description="Ring the app: a running emulator creates a parked incoming call and sends call.initiated "
        "to the webhook URL. The app answers it through the REST API.",
    )
    call.add_argument("--from", dest="from_", required=True, metavar="NUMBER", help="caller's number (E.164)")
    call.add_argument("--to", required=True, metavar="NUMBER", help="the app's number that is called (E.164)")
    call.add_argument("--scenario", help="what the caller says: a scenario name or .yaml path on the emulator")
    call.add_argument("--webhook-url", help="send this call's webhooks here instead of the emulator's default")
    call.add_argument(
        "--emulator",
        default=None,
        metavar="URL",
        help="the running emulator (default http://127.0.0.1:8000; env TELNYX_EMULATOR_URL)",
    )
    call.add_argument("--api-key", help="Bearer key for the emulator (default: env TELNYX_API_KEY, else 'emulator')")
    call.add_argument(
        "--follow",
        action="store_true",
        help="then print each webhook of the call as it is delivered, until its call.hangup (Ctrl-C stops); in a "
        "terminal, keys act as the caller: 0-9 * # A-D press DTMF, h hangs up",
    )


def place_call(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    import httpx

    base = (args.emulator or environ.get("TELNYX_EMULATOR_URL") or "http://127.0.0.1:8000").rstrip("/")
    key = args.api_key or environ.get("TELNYX_API_KEY") or "emulator"
    body = {"from": args.from_, "to": args.to}
    if args.scenario:
        body["scenario"] = args.scenario
    if args.webhook_url:
        body["webhook_url"] = args.webhook_url
    try:
        response = httpx.post(f"{base}/_emulator/calls", json=body, headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        print(f"{PROG}: error: cannot reach the emulator at {base}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 201:
        try:
            problems = "; ".join(e.get("detail") or e["title"] for e in response.json()["errors"])
        except (ValueError, KeyError, TypeError):
            problems = response.text
        print(f"{PROG}: error: {response.status_code}: {problems}", file=sys.stderr)
        return 2 if response.status_code in (401, 422) else 1
    call = response.json()["data"]
    print(f"incoming call {call['call_control_id']} from {call['from']} to {call['to']}: ringing")
    # With no webhook URL anywhere, the event was skipped at once (and logged as skipped): say so here,
    # where the user is looking, since the app will never hear the call ring.
    attempts = httpx.get(f"{base}/_emulator/webhooks", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    if any(a["call_control_id"] == call["call_control_id"] and a["skipped"] for a in attempts):
        print(
            f"{PROG}: warning: no webhook URL: call.initiated was not sent (give --webhook-url here, "
            "or to the emulator's serve)",
            file=sys.stderr,
        )
    else:
        print("call.initiated is on its way to the app's webhook URL (GET /_emulator/webhooks shows the delivery)")
    if args.follow:
        return follow_call(base, key, call["call_control_id"])
    return 0


def follow_call(base: str, key: str, call_control_id: str, poll: float = 0.2, stdin: IO[str] | None = None) -> int:
    """Print each delivery attempt of the call's webhooks as it happens, until the call has hung up; meanwhile keys
    typed at a terminal act as the caller (module docstring)."""
    import httpx

    shown = 0
    query = {"call_control_id": call_control_id}
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client,
        _terminal_keys(sys.stdin if stdin is None else stdin) as keys,
    ):
        if keys is not None:
            print(KEYS_HINT, flush=True)
        try:
            while True:
                attempts = client.get("/_emulator/webhooks", params=query).json()["data"]
                for attempt in attempts[shown:]:
                    print(f"{attempt['at']}  {attempt['event_type']:<34} {_delivery(attempt)}", flush=True)
                    if attempt["event_type"] == "call.hangup":
                        return 0
                shown = len(attempts)
                for pressed in _read_keys(keys, poll):
                    action = key_action(pressed)
                    if action is not None:
                        print(_act(client, call_control_id, action), flush=True)
        except KeyboardInterrupt:
            return 0
        except httpx.HTTPError as exc:
            print(f"{PROG}: error: lost the emulator at {base}: {exc}", file=sys.stderr)
            return 1


def key_action(key: str) -> dict[str, Any] | None:
    """What the caller does for a key pressed while following: a DTMF key (a-d as A-D), ``h`` hangs up."""
    if key.upper() in DTMF_KEYS and len(key) == 1:
        return {"dtmf": key.upper()}
    if key in ("h", "H"):
        return {"hangup": True}
    return None


def _act(client: Any, call_control_id: str, action: dict[str, Any]) -> str:
    """Send the caller's action; the line to print: what was sent and where on the call, or why it was refused."""
    ((name, value),) = action.items()
    what = f"{name} {value}" if name == "dtmf" else name
    response = client.post(f"/_emulator/calls/{call_control_id}/caller", json=action)
    if response.status_code != 200:
        try:
            problems = "; ".join(e.get("detail") or e["title"] for e in response.json()["errors"])
        except (ValueError, KeyError, TypeError):
            problems = response.text
        return f">> {what}: refused ({response.status_code}): {problems}"
    return f">> {what}: sent, at {response.json()['data']['at_ms']} ms of the call's media"


@contextmanager
def _terminal_keys(stdin: IO[str]) -> Iterator[int | None]:
    """The terminal's file descriptor in cbreak mode, restored on exit; None when keys cannot be read: stdin is not
    a terminal (a pipe, a file, a test's captured input) or the platform has no termios (Windows)."""
    try:
        import termios
        import tty
    except ImportError:
        yield None
        return
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        yield None
        return
    if not os.isatty(fd):
        yield None
        return
    saved = termios.tcgetattr(fd)
    try:
        # cbreak rather than raw: keys arrive one at a time without echo, while Ctrl-C still interrupts and
        # printed lines still start at the left margin.
        tty.setcbreak(fd)
        yield fd
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_keys(fd: int | None, timeout: float) -> str:
    """The keys typed within ``timeout`` seconds (waiting that long for the first); sleeps when there is no
    terminal."""
    import select
    import time

    if fd is None:
        time.sleep(timeout)
        return ""
    ready, _, _ = select.select([fd], [], [], timeout)
    return without_escapes(os.read(fd, 64).decode(errors="replace")) if ready else ""


def without_escapes(typed: str) -> str:
    """The keys typed, less the escape sequences a terminal sends for arrows and function keys (ESC [ A would
    otherwise press A)."""
    return re.sub(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|O.|.)?", "", typed)


def _delivery(attempt: Mapping[str, Any]) -> str:
    if attempt["skipped"]:
        return "not sent: no webhook URL"
    outcome = str(attempt["status"]) if attempt["status"] is not None else (attempt["error"] or "no answer")
    fault = f" [fault {attempt['fault']}]" if attempt.get("fault") else ""  # a fault rule's doing
    return f"-> {attempt['url']}: {outcome}" + (" (failover)" if attempt["is_failover"] else "") + fault
