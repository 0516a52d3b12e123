"""A stream's limits and the watchdog that enforces them beside its frame writer (docs/robustness.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from emulator.calls.models import StreamRecord


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds on one stream."""

    # A target that leaves frames unread this long (the socket's buffers full, nothing drained)
    # fails the stream: without it ``ws.send`` would wait forever and the stream never end. Also how
    # long the closing handshake waits for the target's answer.
    send_timeout: float = 10.0
    # Wall-clock seconds before the emulator ends the stream with ``stop`` (reason max_duration).
    max_duration: float = 14_400.0


class WriteBuffer(Protocol):
    """A transport (or a media worker's stand-in for one, whose "buffer" is the batches not yet written)."""

    def get_write_buffer_size(self) -> int: ...


async def watch(transport: WriteBuffer, limits: StreamLimits, record: StreamRecord, stop: Callable[[], None]) -> bool:
    """Call ``stop`` once the stream has run ``max_duration``; return True when the target has stalled.

    A target is stalled when the socket's write buffer has held data and no frame has left for
    ``send_timeout`` seconds: the kernel's buffers are full and the writer waits in ``send``. Checked a
    few times per limit, on the loop's clock: TCP buffers drain in wall time, whatever the media speed.
    Runs until the stream's task cancels it.
    """
    loop = asyncio.get_running_loop()
    started = progress_at = loop.time()
    sent = record.frames_sent
    step = min(limits.send_timeout / 4, limits.max_duration / 4, 1.0)
    while True:
        await asyncio.sleep(step)
        now = loop.time()
        if now - started >= limits.max_duration:
            stop()
        if record.frames_sent != sent or transport.get_write_buffer_size() == 0:
            sent, progress_at = record.frames_sent, now
        elif now - progress_at >= limits.send_timeout:
            return True
