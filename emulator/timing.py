"""The media clock's unit: audio moves in 20 ms frames (Telnyx's packetization, and every tick of a call)."""

from __future__ import annotations

from typing import Final

FRAME_MS: Final = 20
FRAME_SECONDS: Final = FRAME_MS / 1000
