"""The client half of RFC 6455 that the load generator needs, and hudong's markers.

Only what a viewer or publisher does: send the upgrade request, check the answer,
send masked frames (RFC 6455 section 5.3: every client frame is masked) and split
the server's unmasked frames (section 5.2). ``permessage-deflate`` (RFC 7692) is
offered only when asked (``DEFLATE_OFFER``, as browsers offer it; the wire-bytes
benchmark does): the client then inflates the server's compressed messages with
:func:`inflate` and sends its own plain, which the extension allows.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

from protocol.codec import JSON

SUBPROTOCOL = JSON.subprotocol  # hudong.v1.json
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# Cheap scans over JSON batches (PROTOCOL.md, "Batches"): the server's JSON codec
# writes compact JSON with ``type`` first. User text inside an event is a JSON string,
# where a quote is escaped, so the marker below can only match an event's own type.
BATCH_PREFIX = JSON.encode({"type": "batch"})[:-1]  # b'{"type":"batch"'
DANMAKU_MARK = JSON.encode({"type": "danmaku"})[1:-1]  # b'"type":"danmaku"'


def new_key() -> bytes:
    return base64.b64encode(os.urandom(16))


# What Chromium offers (RFC 7692 section 7.1).
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 section 7.2.2


def upgrade_request(
    host: str,
    port: int,
    path: str,
    key: bytes,
    *,
    subprotocol: str = SUBPROTOCOL,
    extensions: str | None = None,
) -> bytes:
    offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    return (
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{offer}"
            f"Sec-WebSocket-Protocol: {subprotocol}\r\nSec-WebSocket-Key: "
        ).encode()
        + key
        + b"\r\n\r\n"
    )


def response_headers(head: bytes) -> dict[bytes, bytes]:
    """The headers of an HTTP response head, names lower-cased."""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return headers


def check_upgrade(head: bytes, key: bytes, subprotocol: str = SUBPROTOCOL) -> str | None:
    """None if ``head`` (status line and headers, without the blank line) accepts the
    upgrade with our subprotocol; otherwise what was wrong."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101"):
        return "upgrade refused: " + lines[0].decode(errors="replace")
    headers = response_headers(head)
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    if headers.get(b"sec-websocket-accept") != accept:
        return "bad Sec-WebSocket-Accept"
    if headers.get(b"sec-websocket-protocol", b"").decode() != subprotocol:
        return f"server did not select {subprotocol}"
    return None


def inflate(payload: bytes) -> bytes:
    """A whole compressed message (RSV1 set) inflated: without context takeover
    (the only way hudong answers the offer) each one stands alone."""
    return zlib.decompressobj(-15).decompress(payload + DEFLATE_TAIL)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (RFC 6455 section 5.3)."""
    n = len(payload)
    mask = os.urandom(4)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    if n:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return head + mask + payload


def split_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete frames at the start of ``buf`` as (opcode, payload), and the rest.

    Server frames are unmasked and hudong never fragments (PROTOCOL.md, "Batches"), so
    the FIN bit is not tracked here; the drains count in place without this function.
    """
    frames = []
    pos, n = 0, len(buf)
    while pos + 2 <= n:
        b1 = buf[pos + 1] & 0x7F
        if b1 < 126:
            h, ln = 2, b1
        elif b1 == 126:
            if pos + 4 > n:
                break
            h, ln = 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
        else:
            if pos + 10 > n:
                break
            h, ln = 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
        end = pos + h + ln
        if end > n:
            break
        frames.append((buf[pos] & 0x0F, buf[pos + h : end]))
        pos = end
    return frames, buf[pos:]


def close_code(payload: bytes) -> int | None:
    """The status code of a close frame (RFC 6455 section 5.5.1), None if it has none."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
