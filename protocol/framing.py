"""Server-side WebSocket framing, done once per batch (RFC 6455 section 5.2).

Frames sent by a server are never masked (RFC 6455 section 5.1), so one serialized
frame is valid for every connection that negotiated the same subprotocol and no
extension: the hub builds the bytes once and writes them to every transport.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode


def server_frame(payload: bytes, *, binary: bool) -> bytes:
    """One complete, unmasked text or binary frame carrying ``payload``."""
    return Frame(Opcode.BINARY if binary else Opcode.TEXT, payload).serialize(mask=False)


def server_ping(payload: bytes = b"") -> bytes:
    """An unmasked ping frame; browsers answer it with a pong on their own."""
    return Frame(Opcode.PING, payload).serialize(mask=False)
