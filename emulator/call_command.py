"""``telnyx-emulator call``: ring the app from a running emulator, and (``--follow``) watch the call's webhooks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from emulator import PROG


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
        help="then print each webhook of the call as it is delivered, until its call.hangup (Ctrl-C stops)",
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


def follow_call(base: str, key: str, call_control_id: str, poll: float = 0.2) -> int:
    """Print each delivery attempt of the call's webhooks as it happens, until the call has hung up."""
    import time

    import httpx

    shown = 0
    query = {"call_control_id": call_control_id}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        try:
            while True:
                attempts = client.get("/_emulator/webhooks", params=query).json()["data"]
                for attempt in attempts[shown:]:
                    print(f"{attempt['at']}  {attempt['event_type']:<34} {_delivery(attempt)}", flush=True)
                    if attempt["event_type"] == "call.hangup":
                        return 0
                shown = len(attempts)
                time.sleep(poll)
        except KeyboardInterrupt:
            return 0
        except httpx.HTTPError as exc:
            print(f"{PROG}: error: lost the emulator at {base}: {exc}", file=sys.stderr)
            return 1


def _delivery(attempt: Mapping[str, Any]) -> str:
    if attempt["skipped"]:
        return "not sent: no webhook URL"
    outcome = str(attempt["status"]) if attempt["status"] is not None else (attempt["error"] or "no answer")
    return f"-> {attempt['url']}: {outcome}" + (" (failover)" if attempt["is_failover"] else "")
