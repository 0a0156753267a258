"""permessage-deflate (RFC 7692) on ``/ws``, compressed once per batch
(ARCHITECTURE.md, "Bytes on the wire").

A client that offers ``permessage-deflate`` (browsers, the websockets client, Node's
``ws``) is answered with ``server_no_context_takeover`` and
``client_no_context_takeover``: every message is compressed on its own, in both
directions. So one compressed batch frame is valid for every viewer that negotiated
the extension, and the hub compresses each batch once per codec per tick, frames it
once and writes the same bytes to all of them; the others get the plain frame. Without
client context takeover the node keeps no inflate window per connection between
messages (a 32 KiB window plus zlib's state each otherwise).

Negotiation and decoding are websockets' own (:mod:`websockets.extensions.permessage_deflate`):
the connection's protocol object inflates the client's compressed frames (within
``limits.max_frame_bytes``) and compresses what it sends to that connection alone.
A message under :data:`MIN_BYTES` is sent plain (RSV1 unset, RFC 7692 section 6):
deflating it saves a few bytes and costs a compressor's set-up. Control frames are
never compressed.

The level, the threshold and the window were chosen by measurement
(``python -m loadtest.deflatebench``, BENCHMARKS.md "Wire bytes").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

from protocol.framing import server_frame

# zlib level of every compressed message (BENCHMARKS.md, "Wire bytes").
LEVEL = 6
# zlib memLevel: zlib's default; 9 changed no byte and cost more time.
MEM_LEVEL = 8
# Window of the server's compressor; a client that asks for a smaller
# ``server_max_window_bits`` gets plain batch frames (its own messages still deflated).
WINDOW_BITS = 15
# Messages shorter than this go plain: mostly those for one connection (acks, online
# counts), where deflate saves a few bytes at most and a compressor's set-up (~13 µs)
# would be paid per viewer. A batch of one danmaku is already above it.
MIN_BYTES = 128

_SETTINGS: dict[str, Any] = {"level": LEVEL, "memLevel": MEM_LEVEL}


class ThresholdDeflate(PerMessageDeflate):
    """One connection's permessage-deflate: websockets' extension, except that a message
    under :data:`MIN_BYTES` is written uncompressed."""

    def encode(self, frame: Frame) -> Frame:
        # The server never fragments, so a short data frame is a whole message.
        if frame.fin and frame.opcode is not Opcode.CONT and len(frame.data) < MIN_BYTES:
            return frame
        return super().encode(frame)


class Negotiation(ServerPerMessageDeflateFactory):
    """Accepts a client's permessage-deflate offer without context takeover on either
    side, so that one compressed frame serves every connection."""

    def __init__(self) -> None:
        super().__init__(
            server_no_context_takeover=True,
            client_no_context_takeover=True,
            compress_settings=_SETTINGS,
        )

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], PerMessageDeflate]:
        response, ext = super().process_request_params(params, accepted_extensions)
        return response, ThresholdDeflate(
            ext.remote_no_context_takeover,
            ext.local_no_context_takeover,
            ext.remote_max_window_bits,
            ext.local_max_window_bits,
            ext.compress_settings,
        )


# One for every connection: the factory keeps nothing of a negotiation.
NEGOTIATION = Negotiation()


def shares_frames(extensions: Sequence[Extension]) -> bool:
    """Whether a connection with these negotiated extensions reads the shared
    compressed batch frames (its decoder's window is at least ours)."""
    return any(
        isinstance(ext, PerMessageDeflate) and ext.local_max_window_bits >= WINDOW_BITS
        for ext in extensions
    )


# Compresses whole messages for every connection: without context takeover it keeps
# nothing from one message to the next.
_SHARED = PerMessageDeflate(True, True, 15, WINDOW_BITS, _SETTINGS)


def deflated_frame(payload: bytes, *, binary: bool) -> bytes | None:
    """One unmasked frame with RSV1 set carrying ``payload`` deflated, or None when the
    message is under :data:`MIN_BYTES` (the plain frame serves every connection)."""
    if len(payload) < MIN_BYTES:
        return None
    frame = Frame(Opcode.BINARY if binary else Opcode.TEXT, payload)
    return frame.serialize(mask=False, extensions=[_SHARED])


class Frames:
    """One encoded message's frames for one codec, each built on first need and then
    kept: plain for connections without permessage-deflate, deflated for the others
    (once per batch, however many connections read it)."""

    __slots__ = ("_deflated", "_plain", "binary", "payload")

    def __init__(self, payload: bytes, *, binary: bool) -> None:
        self.payload = payload
        self.binary = binary
        self._plain: bytes | None = None
        self._deflated: bytes | None = None

    def plain(self) -> bytes:
        frame = self._plain
        if frame is None:
            frame = self._plain = server_frame(self.payload, binary=self.binary)
        return frame

    def deflated(self) -> bytes:
        frame = self._deflated
        if frame is None:
            frame = deflated_frame(self.payload, binary=self.binary) or self.plain()
            self._deflated = frame
        return frame
