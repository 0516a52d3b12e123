"""What the main process and a media worker (``media/worker.py``) say to each other over the worker's pipes.

Sans-I/O: ``pack`` turns a batch of messages into bytes, ``Unpacker`` turns bytes back into batches, whatever
way they were cut on the pipe. A batch is a list of tuples whose first item names the message; the main
process sends one batch per pass of its event loop (every stream's frames of a 1 ms slot together), so the
cost of a pipe write and of pickling is paid per slot, not per frame. Pickle is safe here: both ends are
this package, and the pipes are the worker's own stdin and stdout.

Main process -> worker::

    ("open", stream_id, url, headers | None, tls | None, open_timeout, close_timeout)
    ("send", stream_id, [text, ...])         # text frames, in order; acknowledged by "acked" once written
    ("close", stream_id, code)               # a close handshake; "closed" follows
    ("abort", stream_id)                     # drop the connection without a close frame
    ("credit", stream_id, count)             # the main process has handled ``count`` more of the app's messages

Worker -> main process::

    ("opened", stream_id) | ("failed", stream_id, detail)
    ("acked", stream_id, count)              # ``count`` more "send" batches were handed to the kernel
    ("received", stream_id, text | bytes)    # a message from the app
    ("closed", stream_id, rcvd, sent, rcvd_then_sent)   # the close frames as (code, reason), or None
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

Message = tuple[Any, ...]
Batch = list[Message]

_LENGTH = struct.Struct("!I")
# Messages from the app are at most 1 MiB each (app_audio.MAX_MESSAGE_BYTES), and read credit bounds how
# many a worker sends ahead: a batch larger than this is a broken pipe, not traffic.
MAX_BATCH_BYTES = 256 * 1024 * 1024
# How many of the app's messages a worker forwards before the main process has handled them.
READ_CREDIT = 16


class WireError(Exception):
    """The bytes on the pipe are not batches: the other end is not a media worker, or it broke."""


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
