"""Identifiers in the shapes Telnyx uses, optionally reproducible from a seed.

- call_control_id: ``v3:`` + 54 base64url characters (40 opaque bytes, no padding), as in current
  Telnyx logs, e.g. ``v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg``.
- call_leg_id, call_session_id: time-based (version 1) UUIDs, lowercase.
- stream_id, event ids, user_id: version 4 UUIDs, lowercase.

With a seed every id comes from one ``random.Random``, so a test that makes the same calls in the
same order gets the same ids.
"""

from __future__ import annotations

import base64
import random
import uuid

from emulator import entropy


class IdFactory:
    """Makes ids; seeded for reproducible test fixtures, from the OS's CSPRNG otherwise (``emulator.entropy``)."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed) if seed is not None else None

    def _bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n) if self._rng is not None else entropy.pool.take(n)

    def call_control_id(self) -> str:
        return "v3:" + base64.urlsafe_b64encode(self._bytes(40)).decode().rstrip("=")

    def time_uuid(self) -> str:
        # Version-1 layout (timestamp, clock sequence, node) filled with random bits: the shape
        # Telnyx's call_leg_id/call_session_id have, without leaking this machine's MAC address.
        raw = bytearray(self._bytes(16))
        raw[6] = (raw[6] & 0x0F) | 0x10
        raw[8] = (raw[8] & 0x3F) | 0x80
        return str(uuid.UUID(bytes=bytes(raw)))

    def uuid4(self) -> str:
        return str(uuid.UUID(bytes=self._bytes(16), version=4))

    def stream_id(self) -> str:
        return self.uuid4()

    def event_id(self) -> str:
        return self.uuid4()
