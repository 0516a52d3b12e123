"""Media frames written straight to a stream's WebSocket transport: one write for all of a tick's frames.

Why: at 20 ms per frame and two tracks, 1000 streams are 100,000 messages/s from one Python process.
Through ``ClientConnection.send`` each message costs an async context manager, a ``getrandom`` syscall
for its masking key (``secrets.token_bytes(4)`` per frame) and a ``send`` syscall of its own; those
three were most of the emulator's CPU with many streams (docs/performance-history.md). ``FrameWriter.send``
frames a tick's messages itself (RFC 6455 client text frames: FIN, masked, no extensions) with keys
drawn in bulk from ``os.urandom``, and writes them with one ``transport.write``.

What the target receives is unchanged: the same text messages, in the same order, each in its own
frame. Anything unusual (the connection not open, an extension negotiated) goes through
``ws.send``, which raises ``ConnectionClosed`` as before; flow control is websockets' own ``drain``.
"""

from __future__ import annotations

import ssl
import struct

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from emulator import entropy

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its C extension
    from websockets.utils import apply_mask

USER_AGENT = "telnyx-emulator"
# Frames websockets buffers before it stops reading the socket: with messages of up to the app's
# message size limit, a bound on the memory a flooding app can take.
MAX_QUEUE = 4

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


async def dial(
    url: str,
    *,
    headers: dict[str, str] | None,
    ssl_context: ssl.SSLContext | None,
    open_timeout: float,
    close_timeout: float,
    max_size: int,
) -> ClientConnection:
    """Open a stream's WebSocket to the app, as every stream does (in the main process or a media worker)."""
    is_tls = url.lower().startswith("wss:")
    return await connect(
        url,
        additional_headers=headers,
        ssl=(ssl_context or True) if is_tls else None,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        compression=None,  # FrameWriter's raw frames need a connection without extensions
        proxy=None,
        user_agent_header=USER_AGENT,
        max_size=max_size,
        max_queue=MAX_QUEUE,
    )


def text_frames(messages: list[str]) -> bytes:
    """``messages`` as consecutive masked client text frames, ready for one transport write."""
    return b"".join([text_frame(message) for message in messages])


def text_frame(message: str) -> bytes:
    """``message`` as one masked client text frame (FIN set)."""
    data = message.encode()
    size = len(data)
    if size < 126:
        head = _SHORT.pack(0x81, 0x80 | size)
    elif size < 65536:
        head = _MEDIUM.pack(0x81, 0x80 | 126, size)
    else:
        head = _LONG.pack(0x81, 0x80 | 127, size)
    key = entropy.pool.take(4)
    return head + key + apply_mask(data, key)


class FrameWriter:
    """Writes messages to one client connection, a batch per transport write."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        # Raw framing is only right without extensions (the emulator connects with compression=None).
        self._raw = not ws.protocol.extensions

    def write(self, messages: list[str]) -> bool:
        """Write the messages now if nothing is waiting to go out; False (nothing written) when ``send``
        must be awaited instead: the connection is not open, or earlier frames still fill the buffer.

        The usual tick needs no await at all, which saves a coroutine per stream per tick."""
        ws = self.ws
        transport = ws.transport
        if not self._raw or ws.protocol.state is not State.OPEN or transport.get_write_buffer_size():
            return False
        transport.write(text_frames(messages))
        return True

    async def send(self, messages: list[str]) -> None:
        ws = self.ws
        if not self._raw or ws.protocol.state is not State.OPEN:
            for message in messages:
                await ws.send(message)  # raises ConnectionClosed once the connection is closing
            return
        ws.transport.write(text_frames(messages))
        if ws.transport.get_write_buffer_size():
            try:
                await ws.drain()  # waits while the transport is paused (the target reads slowly)
            except Exception:
                if ws.protocol.state is State.OPEN:
                    raise
                await ws.send(messages[-1])  # the connection was lost: raise ConnectionClosed as send would
