"""Command line: ``telnyx-emulator [serve] [options]``.

Exit status: 0 after a clean shutdown, 2 for a usage or configuration error (a bad flag, setting,
schema or scenario file: one line on stderr names it), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from emulator import __version__
from emulator.config import ENV_PREFIX, ConfigError, Settings, parse_api_keys
from emulator.scenarios import ScenarioError
from emulator.schemas import SchemaError

PROG = "telnyx-emulator"
COMMANDS = ("serve",)


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
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        help="log verbosity (default info; env LOG_LEVEL)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Local emulator of Telnyx Call Control media streaming. Without a command, runs 'serve'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(subparsers)
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
            "call_codec",
            "ca_file",
            "insecure_tls",
            "connect_timeout",
            "log_level",
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
    try:
        settings = settings_from_args(args, environ)
        return serve(settings)
    except (ConfigError, ScenarioError, SchemaError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def serve(settings: Settings) -> int:
    import uvicorn

    from emulator.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    app = create_app(settings)
    state = app.state.emulator
    media = state.library.media(state.library.default, settings.call_codec)
    auth = "only the configured API keys" if settings.api_keys else "any Bearer token"
    print(
        f"{PROG} {__version__}: Telnyx API at http://{settings.host}:{settings.port}/v2\n"
        f"  scenario {state.library.default!r} ({media.duration_ms / 1000:.1f} s), speed {settings.speed:g}x, "
        f"call codec {settings.call_codec}; accepts {auth}",
        flush=True,
    )
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        logging.getLogger(PROG).warning(
            "listening on %s without --api-key: anyone who can reach this address can drive the emulator",
            settings.host,
        )
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level, lifespan="on")
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
