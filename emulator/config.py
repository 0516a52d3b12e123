"""Settings: one frozen dataclass, read from ``TELNYX_EMULATOR_*`` environment variables and CLI flags.

Every field has an environment variable (``ENV_VARS`` below) so ``uvicorn --factory
emulator.app:create_app`` and containers can be configured without flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from emulator.resources import data_dir

ENV_PREFIX = "TELNYX_EMULATOR_"
CALL_CODECS = ("PCMU", "PCMA", "G722", "L16")
# Seeds fit a signed 64-bit integer, so every client (and the OpenAPI int64 format) can send them.
MAX_SEED = 2**63 - 1


class ConfigError(Exception):
    """A setting has a value the emulator cannot use; the message names the setting."""


def _default_scenario_dir() -> Path:
    return data_dir("scenarios")


# Numeric settings and their lower bounds: (name, ">" or ">=", bound, what the message adds).
_BOUNDS: tuple[tuple[str, str, int, str], ...] = (
    ("speed", ">=", 0, ""),
    ("connect_timeout", ">", 0, ""),
    ("max_body_bytes", ">", 0, ""),
    ("max_streams", ">=", 0, " (0: no limit)"),
    ("stream_max_duration", ">", 0, ""),
    ("stream_send_timeout", ">", 0, ""),
    ("history", ">=", 1, ""),
    ("shutdown_grace", ">=", 0, ""),
    ("webhook_timeout", ">", 0, ""),
)


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    # 1 = real time; 10 = ten times faster; 0 = as fast as the stream target reads.
    speed: float = 1.0
    # A scenario name (file stem in scenario_dir) or a path to a YAML file.
    scenario: str = "default"
    scenario_dir: Path = field(default_factory=_default_scenario_dir)
    # YAML mapping of called number (E.164) -> scenario name or path; None: no mapping.
    scenario_map: Path | None = None
    # Empty: any non-empty Bearer token is accepted (like a sandbox); else only these.
    api_keys: frozenset[str] = frozenset()
    # The codec of the emulated call: what `stream_codec: default` streams.
    call_codec: str = "PCMU"
    # TLS for wss:// stream targets: extra CA bundle to trust, or no verification at all.
    ca_file: Path | None = None
    insecure_tls: bool = False
    connect_timeout: float = 10.0
    # Limits (docs/robustness.md). A request body larger than this is answered 413 while it is read.
    max_body_bytes: int = 1024 * 1024
    # Streams running at once, across every API key; one more is answered 429 code 10011. 0: no limit.
    max_streams: int = 1000
    # Wall-clock seconds a stream may run before the emulator ends it with stop (reason max_duration).
    # 14400 s (4 h) is the longest time_limit_secs Telnyx accepts for a call.
    stream_max_duration: float = 14_400.0
    # Seconds a stream target may leave a frame unread before the stream fails (reason send_timeout).
    stream_send_timeout: float = 10.0
    # On shutdown, seconds streams get to send stop and close, then as long for webhooks in flight.
    shutdown_grace: float = 5.0
    # Telnyx ignores a repeated command_id on the same call for 60 s.
    command_id_window: float = 60.0
    # What the control plane keeps per API key: ended calls, journal entries and webhook attempts
    # (the latest of each). Bounds memory over long runs of call churn.
    history: int = 1000
    log_level: str = "info"
    # Unknown call_control_id: lenient (an answered call appears) or strict (422 90015).
    strict_calls: bool = False
    # The emulated Call Control App's webhook settings; dial/answer webhook_url overrides per call.
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    webhook_timeout: float = 2.0
    # Pauses between attempts on one URL; after the last, the failover URL gets the same schedule.
    webhook_retry_delays: tuple[float, ...] = (1.0, 2.0)
    # Ed25519 signing key: base64 of the 32-byte private seed, or a file that keeps one across runs.
    signing_key: str | None = None
    signing_key_file: Path = field(default_factory=lambda: Path.home() / ".telnyx-emulator" / "signing-key")
    # Where each stream's recordings (inbound, outbound, app WAV files) are written when it ends.
    recordings_dir: Path | None = None
    # Seed for reproducible ids (call, leg, session, stream, event ids); None: random ids.
    seed: int | None = None

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
        if self.call_codec not in CALL_CODECS:
            raise ConfigError(f"call_codec: must be one of {', '.join(CALL_CODECS)}, got {self.call_codec!r}")
        if any(delay < 0 for delay in self.webhook_retry_delays):
            raise ConfigError(f"webhook_retry_delays: must be >= 0, got {self.webhook_retry_delays}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: must be 0..{MAX_SEED}, got {self.seed}")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ConfigError(f"log_level: unknown level {self.log_level!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Settings from ``environ`` (``TELNYX_EMULATOR_*``); ``overrides`` (e.g. CLI flags) win."""
        values: dict[str, Any] = {}
        for name, (suffix, cast) in ENV_VARS.items():
            raw = environ.get(ENV_PREFIX + suffix)
            if raw is None or raw == "":
                continue
            try:
                values[name] = cast(raw)
            except ValueError as exc:
                raise ConfigError(f"{ENV_PREFIX}{suffix}: {exc}") from None
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


def parse_delays(raw: str) -> tuple[float, ...]:
    return tuple(_float(part) for part in raw.split(",") if part.strip())


def parse_api_keys(raw: str) -> frozenset[str]:
    return frozenset(key.strip() for key in raw.split(",") if key.strip())


ENV_VARS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "host": ("HOST", str),
    "port": ("PORT", _int),
    "speed": ("SPEED", _float),
    "scenario": ("SCENARIO", str),
    "scenario_dir": ("SCENARIO_DIR", Path),
    "scenario_map": ("SCENARIO_MAP", Path),
    "api_keys": ("API_KEYS", parse_api_keys),
    "call_codec": ("CALL_CODEC", str),
    "ca_file": ("CA_FILE", Path),
    "insecure_tls": ("INSECURE_TLS", _bool),
    "connect_timeout": ("CONNECT_TIMEOUT", _float),
    "max_body_bytes": ("MAX_BODY_BYTES", _int),
    "max_streams": ("MAX_STREAMS", _int),
    "stream_max_duration": ("STREAM_MAX_DURATION", _float),
    "stream_send_timeout": ("STREAM_SEND_TIMEOUT", _float),
    "shutdown_grace": ("SHUTDOWN_GRACE", _float),
    "history": ("HISTORY", _int),
    "log_level": ("LOG_LEVEL", str.lower),
    "strict_calls": ("STRICT_CALLS", _bool),
    "webhook_url": ("WEBHOOK_URL", str),
    "webhook_failover_url": ("WEBHOOK_FAILOVER_URL", str),
    "webhook_timeout": ("WEBHOOK_TIMEOUT", _float),
    "webhook_retry_delays": ("WEBHOOK_RETRY_DELAYS", parse_delays),
    "signing_key": ("SIGNING_KEY", str),
    "signing_key_file": ("SIGNING_KEY_FILE", Path),
    "seed": ("SEED", _int),
    "recordings_dir": ("RECORDINGS_DIR", Path),
}
