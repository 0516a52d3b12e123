"""Settings: one frozen dataclass, read from ``TELNYX_EMULATOR_*`` environment variables and CLI flags.

Each setting is declared once, as a ``Settings`` field made by ``setting()``: its type, its default and
its help. Everything else follows from that declaration (``SETTINGS``): the environment variable
``TELNYX_EMULATOR_<NAME>`` and its parser, the ``serve`` flag ``--<name>`` (``emulator/cli.py``) and the
flag's help, which shows the default and the variable. So every setting has an environment variable, and
``uvicorn --factory emulator.app:create_app`` and containers can be configured without flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from emulator.media.codecs import Codec
from emulator.resources import data_dir

ENV_PREFIX = "TELNYX_EMULATOR_"
CALL_CODECS = tuple(Codec)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
# Seeds fit a signed 64-bit integer, so every client (and the OpenAPI int64 format) can send them.
MAX_SEED = 2**63 - 1

_T = TypeVar("_T")


class ConfigError(Exception):
    """A setting has a value the emulator cannot use; the message names the setting."""


def _default_scenario_dir() -> Path:
    return data_dir("scenarios")


AUTO = -1  # media_workers: by core count, for the streams past the first AUTO_AFTER_STREAMS (media/workers.py)

# Numeric settings and their lower bounds: (name, ">" or ">=", bound, what the message adds).
_BOUNDS: tuple[tuple[str, str, int, str], ...] = (
    ("speed", ">=", 0, ""),
    ("connect_timeout", ">", 0, ""),
    ("max_body_bytes", ">", 0, ""),
    ("max_streams", ">=", 0, " (0: no limit)"),
    ("media_workers", ">=", AUTO, " (0: none, auto: by core count)"),
    ("stream_max_duration", ">", 0, ""),
    ("stream_send_timeout", ">", 0, ""),
    ("history", ">=", 1, ""),
    ("shutdown_grace", ">=", 0, ""),
    ("webhook_timeout", ">", 0, ""),
)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None


def count_or_auto(raw: str) -> int:
    if raw.strip().lower() == "auto":
        return AUTO
    return _int(raw)


def parse_delays(raw: str) -> tuple[float, ...]:
    return tuple(_float(part) for part in raw.split(",") if part.strip())


def parse_api_keys(raw: str) -> frozenset[str]:
    return frozenset(key.strip() for key in raw.split(",") if key.strip())


# How an environment variable's text becomes a setting of each type (the field's type less "| None").
# A setting of another type declares its own parse.
_PARSERS: dict[str, Callable[[str], Any]] = {"str": str, "int": _int, "float": _float, "bool": _bool, "Path": Path}


@dataclass(frozen=True, slots=True)
class Option:
    """What a setting's declaration adds to its type and default: its help, and what is unusual about it."""

    # Says what the setting does; the flag's help adds "(default ...; env NAME)".
    help: str
    # "": the flag is --<name> ("_" read as "-"); None: the setting has an environment variable only.
    flag: str | None = ""
    # Reads the environment variable's text; None: the parser for the field's type (_PARSERS).
    parse: Callable[[str], Any] | None = None
    # The flag is given once per value; the values are joined with "," and read like the variable's text.
    repeat: bool = False
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    # The help's default where the value would not read well (a folder inside the package); None: the value.
    shown_default: str | None = None


def setting(default: _T, help: str, **option: Any) -> _T:
    """A ``Settings`` field: its default, and the rest of its ``Option`` (``option``: Option's fields)."""
    return field(default=default, metadata={"option": Option(help, **option)})


def setting_factory(factory: Callable[[], _T], help: str, **option: Any) -> _T:
    """A ``Settings`` field whose default is made when Settings is: ``setting`` with ``factory()``."""
    return field(default_factory=factory, metadata={"option": Option(help, **option)})


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = setting("127.0.0.1", "address to bind")
    port: int = setting(8000, "port to listen on")
    # 1 = real time; 10 = ten times faster; 0 = as fast as the stream target reads.
    speed: float = setting(1.0, "media pacing: 1 = real time, 10 = ten times faster, 0 = as fast as the target reads")
    # A scenario name (file stem in scenario_dir) or a path to a YAML file.
    scenario: str = setting("default", "default scenario: a name from the scenario dir or a .yaml path")
    scenario_dir: Path = setting_factory(
        _default_scenario_dir,
        "folder of scenario files, added to the bundled ones (a file of the same name wins)",
        shown_default="the bundled scenarios",
    )
    # YAML mapping of called number (E.164) -> scenario name or path; None: no mapping.
    scenario_map: Path | None = setting(None, "YAML: called number (E.164) -> scenario name or path")
    # Empty: any non-empty Bearer token is accepted (like a sandbox); else only these.
    api_keys: frozenset[str] = setting(
        frozenset(),
        "accept only this Bearer key; repeat for more, or list them comma-separated in the env var",
        flag="--api-key",
        parse=parse_api_keys,
        repeat=True,
        metavar="KEY",
        shown_default="any key",
    )
    # The codec of the emulated call: what `stream_codec: default` streams.
    call_codec: str = setting(
        "PCMU", "codec of emulated calls, used for stream_codec=default", choices=tuple(map(str, CALL_CODECS))
    )
    # TLS for wss:// stream targets: extra CA bundle to trust, or no verification at all.
    ca_file: Path | None = setting(None, "extra CA bundle to trust for wss:// targets")
    insecure_tls: bool = setting(False, "do not verify wss:// certificates", flag="--insecure")
    connect_timeout: float = setting(10.0, "seconds to open a stream WebSocket")
    # Limits (docs/robustness.md). A request body larger than this is answered 413 while it is read.
    max_body_bytes: int = setting(1024 * 1024, "largest request body accepted")
    # Streams running at once, across every API key; one more is answered 429 code 10011. 0: no limit.
    max_streams: int = setting(1000, "streams running at once, 0 = no limit")
    # Worker processes that hold the streams' WebSockets (framing, socket I/O), each on a core of its own;
    # 0: every stream runs in the main process (docs/scaling.md).
    media_workers: int = setting(
        0,
        "processes that hold streams' WebSockets, for many streams on many cores; 0 = none, auto = one per usable core "
        "past two, for the streams past the first 200",
        parse=count_or_auto,
        metavar="N|auto",
    )
    # Wall-clock seconds a stream may run before the emulator ends it with stop (reason max_duration).
    # 14400 s (4 h) is the longest time_limit_secs Telnyx accepts for a call.
    stream_max_duration: float = setting(14_400.0, "seconds a stream may run before it is stopped")
    # Seconds a stream target may leave a frame unread before the stream fails (reason send_timeout).
    stream_send_timeout: float = setting(10.0, "seconds a stream target may stop reading before the stream fails")
    # On shutdown, seconds streams get to send stop and close, then as long for webhooks in flight.
    shutdown_grace: float = setting(5.0, "seconds streams, then webhooks in flight, get to finish on shutdown")
    # Telnyx ignores a repeated command_id on the same call for 60 s.
    command_id_window: float = setting(60.0, "seconds a repeated command_id on a call is ignored", flag=None)
    # What the control plane keeps per API key: ended calls, journal entries and webhook attempts
    # (the latest of each). Bounds memory over long runs of call churn.
    history: int = setting(1000, "ended calls, journal entries and webhook attempts kept per API key")
    log_level: str = setting("info", "log verbosity", parse=str.lower, choices=LOG_LEVELS)
    # Unknown call_control_id: lenient (an answered call appears) or strict (422 90015).
    strict_calls: bool = setting(False, "unknown call_control_id -> 422 90015 instead of an answered call")
    # The emulated Call Control App's webhook settings; dial/answer webhook_url overrides per call.
    webhook_url: str | None = setting(None, "the Call Control App's webhook URL")
    webhook_failover_url: str | None = setting(None, "tried when the webhook URL fails")
    # A TeXML application for every namespace: incoming calls fetch their document here (docs/texml.md).
    texml_url: str | None = setting(None, "the TeXML application's voice URL: incoming calls run its TeXML")
    webhook_timeout: float = setting(2.0, "seconds a webhook may take to answer")
    # Pauses between attempts on one URL; after the last, the failover URL gets the same schedule.
    webhook_retry_delays: tuple[float, ...] = setting(
        (1.0, 2.0), "seconds between attempts on one webhook URL, comma-separated", flag=None, parse=parse_delays
    )
    # Ed25519 signing key: base64 of the 32-byte private seed, or a file that keeps one across runs.
    signing_key: str | None = setting(
        None, "the Ed25519 webhook signing key itself: base64 of its 32-byte private seed", flag=None
    )
    signing_key_file: Path = setting_factory(
        lambda: Path.home() / ".telnyx-emulator" / "signing-key",
        "file keeping the Ed25519 webhook signing key, unless env SIGNING_KEY gives the key itself",
    )
    # The local CA that lets unmodified apps reach the emulator as api.telnyx.com (emulator/local_ca.py).
    cert_dir: Path = setting_factory(
        lambda: Path.home() / ".telnyx-emulator",
        "folder of the local CA (ca.pem) and the api.telnyx.com certificate the proxy presents",
    )
    tls_port: int | None = setting(
        None,
        "also serve HTTPS on this port with the api.telnyx.com certificate (for api.telnyx.com mapped to this "
        "host in /etc/hosts)",
        shown_default="none",
    )
    disable_proxy: bool = setting(
        False, "do not also serve as an HTTPS proxy for api.telnyx.com on the same port", flag="--no-proxy"
    )
    # Where each stream's recordings (inbound, outbound, app WAV files) are written when it ends.
    recordings_dir: Path | None = setting(
        None, "write each stream's WAV recordings, and every call recording (record_start), here when they end"
    )
    # The files playback_start's media_name names (Telnyx: files uploaded to its media storage).
    media_dir: Path | None = setting(None, "folder of WAV/MP3 files that playback_start's media_name plays")
    # Seed for reproducible ids (call, leg, session, stream, event ids); None: random ids.
    seed: int | None = setting(None, "seed for reproducible ids", shown_default="random ids")

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            # Settings built in code (the pytest fixture's overrides) skip the environment's parsing.
            if option.type in ("float", "int") and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError(f"{option.name}: expected a number, got {value!r}")
            if option.type == "int" and isinstance(value, float):
                raise ConfigError(f"{option.name}: expected an integer, got {value!r}")
            # nan passes every comparison below, and inf breaks the pacing arithmetic.
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{option.name}: must be a finite number, got {value}")
        for name, relation, bound, note in _BOUNDS:
            value = getattr(self, name)
            if value < bound or (relation == ">" and value == bound):
                raise ConfigError(f"{name}: must be {relation} {bound}{note}, got {value}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: must be 0..65535, got {self.port}")
        if self.tls_port is not None and not 0 <= self.tls_port <= 65535:
            raise ConfigError(f"tls_port: must be 0..65535, got {self.tls_port}")
        if self.call_codec not in CALL_CODECS:
            raise ConfigError(f"call_codec: must be one of {', '.join(CALL_CODECS)}, got {self.call_codec!r}")
        if any(delay < 0 for delay in self.webhook_retry_delays):
            raise ConfigError(f"webhook_retry_delays: must be >= 0, got {self.webhook_retry_delays}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be 0..{MAX_SEED}, got {self.seed}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level: unknown level {self.log_level!r}")
        for name in ("webhook_url", "webhook_failover_url", "texml_url"):
            url = getattr(self, name)
            if url is not None and not url.lower().startswith(("http://", "https://")):
                raise ConfigError(f"{name}: must be an http:// or https:// URL, got {url!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``environ`` (``TELNYX_EMULATOR_*``); ``overrides`` (e.g. CLI flags) win."""
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            raw = environ.get(spec.env)
            if raw is None or raw == "":
                continue
            try:
                values[spec.name] = spec.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{spec.env}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``; an unknown name is a ConfigError that suggests the closest one."""
        names = [option.name for option in fields(self)]
        for name in changes:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{name}: no such setting{hint} (settings: {', '.join(names)})")
        return dataclasses.replace(self, **changes)


# Variables with the prefix that are not settings: the speech cache (emulator/scenarios/tts.py) and the
# emulator `telnyx-emulator call` talks to.
OTHER_VARIABLES = frozenset({ENV_PREFIX + "TTS_CACHE", ENV_PREFIX + "URL"})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line for each ``TELNYX_EMULATOR_*`` variable that means nothing (a typo is otherwise silently
    ignored), with the closest known name."""
    known = sorted({spec.env for spec in SETTINGS} | OTHER_VARIABLES)
    lines = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            lines.append(f"{name} is not a setting; ignored" + (f" (did you mean {close[0]}?)" if close else ""))
    return lines


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting with what its declaration implies: its environment variable, parser and flag."""

    name: str
    # The field's type less "| None": "int", "Path", "frozenset[str]", ...
    type: str
    # The environment variable: TELNYX_EMULATOR_ and the name upper-cased.
    env: str
    parse: Callable[[str], Any]
    # --max-streams; None: the setting has an environment variable only.
    flag: str | None
    option: Option


def _spec(declared: dataclasses.Field[Any]) -> SettingSpec:
    option = declared.metadata.get("option")
    if not isinstance(option, Option):
        raise TypeError(f"Settings.{declared.name}: declare it with setting(), which gives it its help")
    kind = str(declared.type).removesuffix(" | None")
    parse = option.parse or _PARSERS.get(kind)
    if parse is None:
        raise TypeError(f"Settings.{declared.name}: no parser for {kind}; declare one with parse=")
    flag = "--" + declared.name.replace("_", "-") if option.flag == "" else option.flag
    return SettingSpec(declared.name, kind, ENV_PREFIX + declared.name.upper(), parse, flag, option)


# Every setting, in declaration order: Settings.from_env reads these variables; `serve` makes these flags.
SETTINGS: tuple[SettingSpec, ...] = tuple(_spec(declared) for declared in fields(Settings))
