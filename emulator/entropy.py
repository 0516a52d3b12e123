"""Random bytes from the OS's CSPRNG, drawn in bulk: one ``os.urandom`` call per 4 KiB instead of one per use.

WebSocket masking keys (4 bytes per frame) and ids (16 to 40 bytes each) are taken thousands of times a
second; a ``getrandom`` syscall each was a measurable share of the emulator's CPU (docs/performance.md).
The bytes are the same quality; only the syscalls are batched.
"""

from __future__ import annotations

import os

_POOL_BYTES = 4096


class EntropyPool:
    """Hands out slices of a buffer refilled from ``os.urandom``; never hands out the same bytes twice."""

    def __init__(self, size: int = _POOL_BYTES) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        at = self._at
        if at + n > len(self._pool):
            self._pool, at = os.urandom(max(self._size, n)), 0
        self._at = at + n
        return self._pool[at : at + n]


pool = EntropyPool()  # one per process: the loop is single-threaded, and a fork gets a fresh one below


def _reset_after_fork() -> None:
    global pool
    pool = EntropyPool()  # a forked child must not repeat its parent's unused bytes


os.register_at_fork(after_in_child=_reset_after_fork)
