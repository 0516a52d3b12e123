"""The fixture's defaults: where its servers listen, how long a wait may take, its settings and key."""

from __future__ import annotations

from typing import Any

from emulator.config import Settings
from emulator.webhooks.signing import SigningKey

DEFAULT_API_KEY = "KEY-telnyx-emulator-test"
DEFAULT_TIMEOUT = 10.0
HOST = "127.0.0.1"
# One signing key per test process: nothing writes a key file into the home directory, and every
# emulator of the run verifies with the same public key.
SIGNING_KEY = SigningKey.generate().private_b64()


def fixture_settings(**overrides: Any) -> Settings:
    """The fixture's defaults: unpaced media, fast webhook retries, quiet logs; ``overrides`` win."""
    base = Settings(
        host=HOST,
        port=0,
        speed=0,
        signing_key=SIGNING_KEY,
        webhook_retry_delays=(0.05, 0.1),
        log_level="warning",
    )
    return base.replace(**overrides)
