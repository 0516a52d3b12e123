"""The media clock's unit: audio moves in 20 ms frames (Telnyx's packetization, and every tick of a call)."""

from __future__ import annotations

from typing import Final

FRAME_MS: Final = 20
FRAME_SECONDS: Final = FRAME_MS / 1000
# A tick written this late or later missed a whole frame of its schedule: the emulator could not keep pace
# (the stream records count these ticks; ``telnyx-emulator load`` says the emulator was the bottleneck).
LATE_TICK_S: Final = FRAME_SECONDS
