"""Command line: ``telnyx-emulator [serve] [options]``.

Exit status: 0 after a clean shutdown, 2 for a usage or configuration error (a bad flag, setting,
schema or scenario file: one line on stderr names it), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from emulator import __version__
from emulator.api.schemas import SchemaError
from emulator.config import ENV_PREFIX, ConfigError, Settings, parse_api_keys
from emulator.scenarios import cli as scenario_cli
from emulator.scenarios.loader import ScenarioError

PROG = "telnyx-emulator"
COMMANDS = ("serve", "call", "scenario")


def _serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the emulator (the default command)",
        description="Serve the Telnyx Call Control API locally and stream scenario audio to stream_url.",
        epilog=f"Every option also reads an environment variable {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}PORT=9000.",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; env HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000; env PORT)")
    serve.add_argument(
        "--speed",
        type=float,
        help="media pacing: 1 = real time, 10 = ten times faster, 0 = as fast as the target reads (env SPEED)",
    )
    serve.add_argument(
        "--scenario", help="default scenario: a name from the scenario dir or a .yaml path (env SCENARIO)"
    )
    serve.add_argument("--scenario-dir", type=Path, help="folder of scenario files (env SCENARIO_DIR)")
    serve.add_argument(
        "--scenario-map", type=Path, help="YAML: called number (E.164) -> scenario name or path (env SCENARIO_MAP)"
    )
    serve.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accept only this Bearer key (repeat for more; env API_KEYS, comma-separated); default: any key",
    )
    serve.add_argument("--call-codec", help="codec of emulated calls, used for stream_codec=default (env CALL_CODEC)")
    serve.add_argument("--ca-file", type=Path, help="extra CA bundle to trust for wss:// targets (env CA_FILE)")
    serve.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        dest="insecure_tls",
        help="do not verify wss:// certificates (env INSECURE_TLS)",
    )
    serve.add_argument("--connect-timeout", type=float, help="seconds to open a stream WebSocket (env CONNECT_TIMEOUT)")
    serve.add_argument(
        "--max-body-bytes", type=int, help="largest request body accepted (default 1048576; env MAX_BODY_BYTES)"
    )
    serve.add_argument(
        "--max-streams", type=int, help="streams running at once, 0 = no limit (default 1000; env MAX_STREAMS)"
    )
    serve.add_argument(
        "--stream-max-duration",
        type=float,
        help="seconds a stream may run before it is stopped (default 14400; env STREAM_MAX_DURATION)",
    )
    serve.add_argument(
        "--stream-send-timeout",
        type=float,
        help="seconds a stream target may stop reading before the stream fails (default 10; env STREAM_SEND_TIMEOUT)",
    )
    serve.add_argument(
        "--history",
        type=int,
        help="ended calls, journal entries and webhook attempts kept per API key (default 1000; env HISTORY)",
    )
    serve.add_argument(
        "--shutdown-grace",
        type=float,
        help="seconds streams, then webhooks in flight, get to finish on shutdown (default 5; env SHUTDOWN_GRACE)",
    )
    serve.add_argument(
        "--strict-calls",
        action="store_true",
        default=None,
        help="unknown call_control_id -> 422 90015 instead of an answered call (env STRICT_CALLS)",
    )
    serve.add_argument("--webhook-url", help="the Call Control App's webhook URL (env WEBHOOK_URL)")
    serve.add_argument("--webhook-failover-url", help="tried when the webhook URL fails (env WEBHOOK_FAILOVER_URL)")
    serve.add_argument(
        "--webhook-timeout", type=float, help="seconds a webhook may take to answer (env WEBHOOK_TIMEOUT)"
    )
    serve.add_argument(
        "--signing-key-file",
        type=Path,
        help="file keeping the Ed25519 webhook signing key (default ~/.telnyx-emulator/signing-key; "
        "env SIGNING_KEY_FILE; env SIGNING_KEY gives the key itself)",
    )
    serve.add_argument(
        "--recordings-dir", type=Path, help="write each stream's WAV recordings here when it ends (env RECORDINGS_DIR)"
    )
    serve.add_argument("--seed", type=int, help="seed for reproducible ids (env SEED); default: random ids")
    serve.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        help="log verbosity (default info; env LOG_LEVEL)",
    )


def _call_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Local emulator of Telnyx Call Control media streaming. Without a command, runs 'serve'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(subparsers)
    _call_parser(subparsers)
    scenario_cli.add_parser(subparsers)
    return parser


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    overrides = {
        name: getattr(args, name)
        for name in (
            "host",
            "port",
            "speed",
            "scenario",
            "scenario_dir",
            "scenario_map",
            "call_codec",
            "ca_file",
            "insecure_tls",
            "connect_timeout",
            "max_body_bytes",
            "max_streams",
            "stream_max_duration",
            "stream_send_timeout",
            "shutdown_grace",
            "history",
            "log_level",
            "strict_calls",
            "webhook_url",
            "webhook_failover_url",
            "webhook_timeout",
            "signing_key_file",
            "seed",
            "recordings_dir",
        )
    }
    if args.api_keys:
        overrides["api_keys"] = parse_api_keys(",".join(args.api_keys))
    return Settings.from_env(environ, **overrides)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    # Bare `telnyx-emulator` and `telnyx-emulator --port 9000` mean `serve`.
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    if args.command == "call":
        return place_call(args, environ)
    if args.command == "scenario":
        return scenario_cli.run(args)
    try:
        settings = settings_from_args(args, environ)
        return serve(settings)
    except (ConfigError, ScenarioError, SchemaError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def serve(settings: Settings) -> int:
    from emulator.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_plain_logger_names)
    # The emulator logs each webhook delivery itself, naming the event; httpx's own line would repeat it.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    app = create_app(settings)
    state = app.state.emulator
    media = state.library.media(state.library.default, settings.call_codec)
    auth = "only the configured API keys" if settings.api_keys else "any Bearer token"
    print(
        f"{PROG} {__version__}: Telnyx API at http://{settings.host}:{settings.port}/v2\n"
        f"  scenario {state.library.default!r} ({media.duration_ms / 1000:.1f} s), speed {settings.speed:g}x, "
        f"call codec {settings.call_codec}; accepts {auth}\n"
        f"  webhooks to {settings.webhook_url or '(none: set --webhook-url or dial/answer webhook_url)'}\n"
        f"  webhook public key (TELNYX_PUBLIC_KEY): {state.signing_key.public_key_b64()}",
        flush=True,
    )
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        logging.getLogger(PROG).warning(
            "listening on %s without --api-key: anyone who can reach this address can drive the emulator",
            settings.host,
        )
    # log_config=None: uvicorn's loggers use the format above, so its lines and ours read alike.
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, lifespan="on", log_config=None
    )
    server = GracefulServer(config)
    # Everything loaded so far (modules, schemas, scenario audio) lives as long as the process. Frozen,
    # the collector no longer walks it: a full collection took ~45 ms here, delaying every stream's
    # frames by as much (bench/concurrency.py); with the start-up objects frozen it walks only what
    # streams and calls created since.
    gc.freeze()
    try:
        server.run()
    except SystemExit:  # uvicorn exits (status 3) when it cannot listen; its ERROR line says why
        return 1
    return 0 if server.started else 1


def _plain_logger_names(record: logging.LogRecord) -> bool:
    # uvicorn logs its life cycle as "uvicorn.error", which reads like an error when it is not.
    if record.name == "uvicorn.error":
        record.name = "uvicorn"
    return True


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process would end with
    status 130/143; a requested stop that shut down cleanly is a success, so exit 0 instead."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


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
    return 0
