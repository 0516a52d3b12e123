"""What the main process and a media worker (``media/worker.py``) say to each other over the worker's pipes.

Sans-I/O: ``pack`` turns a batch of messages into bytes, ``Unpacker`` turns bytes back into batches, whatever
way they were cut on the pipe. A batch is a list of tuples whose first item names the message; the main
process sends one batch per pass of its event loop (every stream's frames of a 1 ms slot together), so the
cost of a pipe write and of pickling is paid per slot, not per frame. Pickle is safe here: both ends are
this package, and the pipes are the worker's own stdin and stdout.

Main process -> worker::

    ("open", stream_id, url, headers | None, (ca_file | None, insecure), open_timeout, close_timeout, max_size)
    ("send", stream_id, [text, ...])         # text frames, in order; acknowledged by "acked" once written
    ("close", stream_id, code)               # a close handshake; "closed" follows
    ("abort", stream_id)                     # drop the connection without a close frame; "closed" follows
    ("credit", stream_id, count)             # the main process has handled ``count`` more of the app's messages
    ("forget", stream_id)                    # the stream has ended: drop what is left of it

Worker -> main process::

    ("opened", stream_id) | ("failed", stream_id, detail)
    ("acked", stream_id, count)              # ``count`` more "send" batches were handed to the kernel
    ("received", stream_id, text | bytes)    # a message from the app
    ("closed", stream_id, rcvd, sent, rcvd_then_sent, ok)   # close frames as (code, reason) or None; ok: 1000/1001
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

Message = tuple[Any, ...]
Batch = list[Message]

_LENGTH = struct.Struct("!I")
# A worker cuts what it sends into batches of about SPLIT_BYTES of the app's messages (each at most
# app_audio.MAX_MESSAGE_BYTES): a batch larger than MAX_BATCH_BYTES is a broken pipe, not traffic.
SPLIT_BYTES = 4 * 1024 * 1024
MAX_BATCH_BYTES = 64 * 1024 * 1024
# How many of the app's messages a worker forwards before the main process has handled them.
READ_CREDIT = 16


class WireError(Exception):
    """The bytes on the pipe are not batches: the other end is not a media worker, or it broke."""


def split(batch: Batch, limit: int = SPLIT_BYTES) -> list[Batch]:
    """``batch`` in order, cut so that each part carries about ``limit`` bytes of text or binary at most (one
    message larger than that is a part of its own). Empty: no part."""
    parts: list[Batch] = []
    part: Batch = []
    size = 0
    for message in batch:
        weight = sum(len(item) for item in message[2:] if isinstance(item, str | bytes))
        if part and size + weight > limit:
            parts.append(part)
            part, size = [], 0
        part.append(message)
        size += weight
    if part:
        parts.append(part)
    return parts


def pack(batch: Batch) -> bytes:
    data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class Unpacker:
    """Batches out of a byte stream cut anywhere."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Batch]:
        buffer = self._buffer
        buffer += data
        batches: list[Batch] = []
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            if size > MAX_BATCH_BYTES:
                raise WireError(f"a batch of {size} bytes is announced: the pipe is out of step")
            end = _LENGTH.size + size
            if len(buffer) < end:
                break
            try:
                batch = pickle.loads(bytes(buffer[_LENGTH.size : end]))
            except Exception as exc:
                raise WireError(f"a batch does not unpickle: {exc}") from None
            if not isinstance(batch, list):
                raise WireError(f"a batch is a {type(batch).__name__}, not a list")
            batches.append(batch)
            del buffer[:end]
        return batches
