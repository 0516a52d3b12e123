"""Command line: ``telnyx-emulator [serve] [options]``.

Exit status: 0 after a clean shutdown, 2 for a usage or configuration error (a bad flag, setting,
schema or scenario file: one line on stderr names it), 1 for anything unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import shutil
import socket
import sys
import textwrap
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from emulator import PROG, __version__, call_command, key_commands
from emulator.api.dashboard import dashboard_url
from emulator.api.schemas import SchemaError
from emulator.config import ENV_PREFIX, SETTINGS, ConfigError, Settings, SettingSpec, unknown_variables
from emulator.load import command as load_command
from emulator.scenarios import cli as scenario_cli
from emulator.scenarios.loader import ScenarioError

if TYPE_CHECKING:  # the serve command imports the app itself, when it runs
    from emulator.media.workers import MediaWorkers

COMMANDS = ("serve", "call", "load", "scenario", "ca", "public-key")


# argparse's own int and float read those flags, so a bad value reads "invalid int value"; a string flag
# takes its text as it is, and a setting of any other type (or with a parser of its own, like
# --media-workers' "auto") is read by its environment variable's parser.
_FLAG_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "Path": Path}


def _serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Raw: the epilog's list of settings keeps its lines; _fill wraps each paragraph instead.
    serve = subparsers.add_parser(
        "serve",
        help="run the emulator (the default command)",
        description=_fill("Serve the Telnyx Call Control API locally and stream scenario audio to stream_url."),
        epilog=_serve_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Settings()
    for spec in SETTINGS:
        if spec.flag is None:
            continue
        how: dict[str, Any] = {"dest": spec.name, "help": _flag_help(spec, getattr(defaults, spec.name))}
        if spec.type == "bool":
            # None, not False, when absent: the environment variable (or the default) decides.
            how.update(action="store_true", default=None)
        elif spec.option.repeat:
            how["action"] = "append"
        elif spec.type != "str":
            how["type"] = spec.option.parse or _FLAG_TYPES.get(spec.type, spec.parse)
        if spec.option.metavar is not None:
            how["metavar"] = spec.option.metavar
        if spec.option.choices is not None:
            how["choices"] = spec.option.choices
        serve.add_argument(spec.flag, **how)


def _flag_help(spec: SettingSpec, default: object) -> str:
    shown = spec.option.shown_default or _shown(default)
    return f"{spec.option.help} ({f'default {shown}; ' if shown else ''}env {spec.env.removeprefix(ENV_PREFIX)})"


def _shown(value: object) -> str:
    """A default as help shows it: 14400 (not 14400.0), a path under the home folder as ~/..., a string in
    quotes (so the scenario named default reads 'default'); "" for none."""
    if value is None or isinstance(value, bool):  # a bool is a flag, off unless given
        return ""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path) and value.is_relative_to(Path.home()):
        return f"~/{value.relative_to(Path.home())}"
    if isinstance(value, tuple | frozenset):
        return ",".join(sorted(map(_shown, value)) if isinstance(value, frozenset) else map(_shown, value))
    return str(value)


def _serve_epilog() -> str:
    lines = [
        "examples:",
        f"  {PROG}                                   # http://127.0.0.1:8000, real time, the default caller",
        f"  {PROG} --speed 0 --scenario ivr-menu --webhook-url http://127.0.0.1:5000/webhooks",
        "",
        _fill(f"Every option also reads an environment variable {ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}PORT=9000."),
    ]
    env_only = [spec for spec in SETTINGS if spec.flag is None]
    if env_only:
        lines.append("\nThese settings have an environment variable and no option:")
    defaults = Settings()
    for spec in env_only:
        shown = spec.option.shown_default or _shown(getattr(defaults, spec.name))
        lines.append(f"  {spec.env}")
        lines.append(_fill(spec.option.help + (f" (default {shown})" if shown else ""), indent=" " * 24))
    lines.append(
        "\n"
        + _fill(
            f"Other commands: call, load, scenario (list, check, render), ca, public-key; "
            f"{PROG} COMMAND --help for each."
        )
    )
    return "\n".join(lines)


def _fill(text: str, indent: str = "") -> str:
    # The width argparse wraps its own help to.
    width = shutil.get_terminal_size().columns - 2
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Local emulator of Telnyx Call Control media streaming. Without a command, runs 'serve'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _serve_parser(subparsers)
    call_command.add_parser(subparsers)
    load_command.add_parser(subparsers)
    scenario_cli.add_parser(subparsers)
    key_commands.add_parsers(subparsers)
    return parser


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    overrides: dict[str, Any] = {}
    for spec in SETTINGS:
        if spec.flag is None:
            continue
        value = getattr(args, spec.name)
        if spec.option.repeat and value:
            value = spec.parse(",".join(value))
        overrides[spec.name] = value
    return Settings.from_env(environ, **overrides)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    try:
        return _main(argv, environ)
    except BrokenPipeError:  # `telnyx-emulator scenario list | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # so the interpreter's final flush of stdout stays quiet
        return 0


def _main(argv: Sequence[str] | None, environ: Mapping[str, str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = os.environ if environ is None else environ
    # Bare `telnyx-emulator`, `telnyx-emulator --port 9000` and `telnyx-emulator --help` mean `serve`: its help
    # shows the flags people look for first, with their defaults, and names the other commands.
    if not argv or (argv[0] not in COMMANDS and argv[0] != "--version"):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    if args.command == "call":
        return call_command.place_call(args, environ)
    if args.command == "load":
        return load_command.run(args, environ)
    if args.command == "scenario":
        return scenario_cli.run(args)
    if args.command == "ca":
        return key_commands.print_ca(args, environ)
    if args.command == "public-key":
        return key_commands.print_public_key(environ)
    try:
        settings = settings_from_args(args, environ)
        return serve(settings)
    except (ConfigError, ScenarioError, SchemaError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _workers_note(workers: MediaWorkers | None) -> str:
    if workers is None:
        return ""
    after = f", for the streams past the first {workers.after}" if workers.after else ""
    return f"\n  media workers: {workers.count}{after} (docs/scaling.md)"


def serve(settings: Settings) -> int:
    from emulator.api.proxy import proxy_protocol
    from emulator.app import create_app
    from emulator.local_ca import CertError, LocalCA

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_plain_logger_names)
    # The emulator logs each webhook delivery itself, naming the event; httpx's own line would repeat it.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    log = logging.getLogger(PROG)
    for line in unknown_variables(os.environ):
        log.warning("%s", line)
    app = create_app(settings)
    state = app.state.emulator
    # log_config=None: uvicorn's loggers use the format above, so its lines and ours read alike.
    http: Any = "auto"
    proxy_note = ""
    if not settings.disable_proxy:  # the same port also proxies api.telnyx.com (emulator/api/proxy.py)
        try:
            ca = LocalCA(settings.cert_dir)
            http = proxy_protocol(ca.server_context())
            proxy_note = f"\n  HTTPS proxy for api.telnyx.com on this port too: trust {ca.ca_path}"
        except CertError as exc:  # the API itself does not need it: serve without the proxy
            log.warning("no api.telnyx.com proxy: cannot use cert_dir: %s", exc)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        log_config=None,
        http=http,
    )
    # Bound before anything says "listening": a port in use is one error line and exit 1, no banner.
    sock = _bind(settings.host, settings.port)
    if sock is None:
        return 1
    port = sock.getsockname()[1]
    companion: tuple[uvicorn.Server, socket.socket] | None = None
    if settings.tls_port is not None:  # HTTPS as api.telnyx.com on a port of its own (hosts-file setups)
        try:
            companion = _tls_listener(app, settings, LocalCA(settings.cert_dir))
        except CertError as exc:
            print(f"{PROG}: error: cert_dir: {exc}", file=sys.stderr)
            return 2
        if companion is None:
            return 1
        proxy_note += f"\n  HTTPS as api.telnyx.com on port {companion[1].getsockname()[1]} too"
    media = state.library.media(state.library.default, settings.call_codec)
    auth = "only the configured API keys" if settings.api_keys else "any Bearer token"
    print(
        f"{PROG} {__version__}: Telnyx API at http://{settings.host}:{port}/v2\n"
        f"  scenario {state.library.default!r} ({media.duration_ms / 1000:.1f} s), speed {settings.speed:g}x, "
        f"call codec {settings.call_codec}; accepts {auth}\n"
        f"  webhooks to {settings.webhook_url or '(none: set --webhook-url or dial/answer webhook_url)'}\n"
        f"  webhook public key (TELNYX_PUBLIC_KEY): {state.signing_key.public_key_b64()}\n"
        f"  dashboard: {dashboard_url(f'http://{settings.host}:{port}', settings.api_keys, os.environ)}{proxy_note}"
        f"{_workers_note(state.runtime.workers)}",
        flush=True,
    )
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        log.warning(
            "listening on %s without --api-key: anyone who can reach this address can drive the emulator",
            settings.host,
        )
    server = GracefulServer(config)
    # Everything loaded so far (modules, schemas, scenario audio) lives as long as the process. Frozen,
    # the collector no longer walks it: a full collection took ~45 ms here, delaying every stream's
    # frames by as much (bench/concurrency.py); with the start-up objects frozen it walks only what
    # streams and calls created since.
    gc.freeze()
    try:
        if companion is None:
            server.run(sockets=[sock])
        else:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(_serve_with(server, sock, *companion))
    except SystemExit:  # uvicorn exits (status 3) when it cannot serve; its ERROR line says why
        return 1
    return 0 if server.started else 1


class CompanionServer(uvicorn.Server):
    """A second listener of the same app (the TLS port): the main server handles the signals and the app's
    lifespan, and this one stops when the main one has."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _tls_listener(app: Any, settings: Settings, ca: Any) -> tuple[uvicorn.Server, socket.socket] | None:
    assert settings.tls_port is not None
    sock = _bind(settings.host, settings.tls_port)
    if sock is None:
        return None
    certificate, key = ca.server_cert()
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        lifespan="off",
        log_config=None,
        ssl_certfile=str(certificate),
        ssl_keyfile=str(key),
    )
    return CompanionServer(config), sock


async def _serve_with(
    server: uvicorn.Server, sock: socket.socket, companion: uvicorn.Server, companion_sock: socket.socket
) -> None:
    beside = asyncio.create_task(companion.serve(sockets=[companion_sock]))
    try:
        await server.serve(sockets=[sock])
    finally:
        companion.should_exit = True
        await beside


def _bind(host: str, port: int) -> socket.socket | None:
    """The listening address, bound (uvicorn listens on it); None after one error line when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(f"{PROG}: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None
    sock.set_inheritable(True)
    return sock


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

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn waits for open answers before the app's shutdown: the endless event streams end first (the
        # TLS companion's too: they share the app). Imported here, as serve imports the app: --help stays quick.
        from emulator.api.events import end_event_streams

        end_event_streams(self.config.app)
        await super().shutdown(sockets)
