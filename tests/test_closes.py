"""Input that ends a connection: each documented close code, and nobody else affected.

PROTOCOL.md, "Close codes": a connection is closed only for a protocol violation, a
limit that makes reading on impossible, or a server decision. Each test checks the
code the client receives and that the other viewers of the room carry on: one of them
sends a danmaku that the other (on the other codec) receives in a batch. The handshake
refusals of "Transport" and "Subprotocols and codecs" (404, 400) are here too.
"""

import asyncio
import base64
import os
import struct
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.carry_on import (
    OTHER_ROOM,
    ROOM,
    SUBPROTOCOLS,
    close_code_of,
    sender_carries_on,
)
from tests.conftest import UNIT


async def bystanders(srv, room=ROOM):
    """Two viewers of ``room``, one per codec."""
    clients = []
    for subprotocol in SUBPROTOCOLS:
        client = await srv.connect(subprotocol)
        await client.join(room)
        clients.append(client)
    return clients


async def others_carry_on(clients, text="carry on"):
    """The first of ``clients`` acks a danmaku; every one of them receives it."""
    sender, *viewers = clients
    await sender_carries_on(sender, viewers, text)


# --- 1003: a frame type the subprotocol does not use ------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "frame"),
    [
        pytest.param("hudong.v1.json", b'{"op": "ping"}', id="binary-on-json"),
        pytest.param("hudong.v1.msgpack", '{"op": "ping"}', id="text-on-msgpack"),
    ],
)
async def test_wrong_frame_type_closes_with_1003(live, subprotocol, frame):
    await live.create_room(ROOM)
    others = await bystanders(live)
    victim = await live.connect(subprotocol)
    await victim.join(ROOM)
    await victim.send_raw(frame)
    assert await close_code_of(victim) == 1003
    await others_carry_on(others)


# --- 1009: a frame or fragmented message over limits.max_frame_bytes ----------------------

SMALL_FRAMES = {"max_frame_bytes": 8192, "max_command_bytes": 1024}


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
@pytest.mark.parametrize("fragments", [1, 3], ids=["one-frame", "fragmented"])
async def test_message_over_max_frame_bytes_closes_with_1009(
    server_factory, subprotocol, fragments
):
    async with server_factory(limits=SMALL_FRAMES) as srv:
        await srv.create_room(ROOM)
        others = await bystanders(srv)
        victim = await srv.connect(subprotocol)
        await victim.join(ROOM)
        # 9000 bytes in all: over 8192 as one frame, or as three frames of 3000 each.
        size = 9000 // fragments
        part = b"x" * size if victim.codec.binary else "x" * size
        await victim.ws.send(part if fragments == 1 else [part] * fragments)
        assert await close_code_of(victim) == 1009
        await others_carry_on(others)


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_message_of_max_frame_bytes_is_not_closed(server_factory, subprotocol):
    """At the frame limit the connection stays: the command limit answers with an error."""
    async with server_factory(limits=SMALL_FRAMES) as srv:
        await srv.create_room(ROOM)
        others = await bystanders(srv)
        victim = await srv.connect(subprotocol)
        await victim.join(ROOM)
        await victim.ws.send(b"x" * 8192 if victim.codec.binary else "x" * 8192)
        reply = await victim.recv()
        assert (reply["type"], reply["code"], reply["limit"]) == ("error", "frame_too_large", 1024)
        await sender_carries_on(victim, others)


# --- 1002: WebSocket framing violated (RFC 6455) ------------------------------------------


def frame(opcode, payload=b"", *, fin=True, rsv=0, mask=True):
    """One WebSocket frame built by hand (RFC 6455 section 5.2), valid or not."""
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
PING_JSON = b'{"op": "ping", "id": 1}'


class FrameSocket:
    """A TCP connection that does the opening handshake, then sends any bytes at all and
    reads the server's (unmasked) frames."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port, *, path="/ws", subprotocol="hudong.v1.json"):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
        )
        writer.write(request.encode())
        sock = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5 * UNIT)
        assert head.startswith(b"HTTP/1.1 101 "), head
        return sock

    async def read_frame(self):
        """(opcode, payload) of the next frame from the server."""
        b0, b1 = await self.reader.readexactly(2)
        assert not b1 & 0x80, "a server must not mask its frames (RFC 6455 section 5.1)"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(length)

    async def close_code(self, timeout=5.0):
        """Read until the server's close frame; its code. Fails with what came instead."""
        seen = []

        async def until_close():
            while True:
                opcode, payload = await self.read_frame()
                if opcode == CLOSE:
                    return struct.unpack("!H", payload[:2])[0]
                seen.append((opcode, payload[:200]))

        try:
            return await asyncio.wait_for(until_close(), timeout * UNIT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            raise AssertionError(f"no close frame ({exc!r}); received instead: {seen}") from None

    def send(self, data):
        self.writer.write(data)

    async def aclose(self):
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


VIOLATIONS = [
    pytest.param(frame(TEXT, PING_JSON, mask=False), id="unmasked-frame"),
    pytest.param(frame(0x3, b""), id="reserved-data-opcode"),
    pytest.param(frame(0xB, b""), id="reserved-control-opcode"),
    pytest.param(frame(TEXT, PING_JSON, rsv=0b100), id="rsv1-without-extension"),
    pytest.param(frame(TEXT, PING_JSON, rsv=0b001), id="rsv3-set"),
    pytest.param(frame(CONT, PING_JSON), id="continuation-without-start"),
    pytest.param(
        frame(TEXT, PING_JSON[:5], fin=False) + frame(TEXT, PING_JSON[5:]),
        id="new-message-inside-fragmented-one",
    ),
    pytest.param(frame(PING, b"", fin=False), id="fragmented-control-frame"),
    pytest.param(frame(PING, b"p" * 126), id="control-frame-over-125-bytes"),
    pytest.param(frame(CLOSE, b"\x03"), id="close-payload-of-1-byte"),
    pytest.param(frame(CLOSE, struct.pack("!H", 1005)), id="close-code-1005-sent"),
    pytest.param(frame(CLOSE, struct.pack("!H", 999)), id="close-code-999"),
]

# RFC 6455 section 8.1: invalid UTF-8 in a text message fails the connection (1007).
BAD_UTF8 = [
    pytest.param(frame(TEXT, b'{"op": "ping", "id": 1, "x": "\xff\xfe"}'), id="bad-utf8-text"),
    pytest.param(
        frame(TEXT, b'{"op": "ping", "id": 1, "x": "\xc3', fin=False) + frame(CONT, b'"}'),
        id="bad-utf8-across-fragments",
    ),
]


@pytest.mark.parametrize(
    ("violation", "code"),
    [pytest.param(*p.values, 1002, id=p.id) for p in VIOLATIONS]
    + [pytest.param(*p.values, 1007, id=p.id) for p in BAD_UTF8],
)
async def test_framing_violation_closes_with_its_code(live, violation, code):
    await live.create_room(ROOM)
    others = await bystanders(live)
    sock = await FrameSocket.open(live.port)
    try:
        opcode, _ = await asyncio.wait_for(sock.read_frame(), 5 * UNIT)  # hello
        assert opcode == TEXT
        sock.send(violation)
        assert await sock.close_code() == code
    finally:
        await sock.aclose()
    await others_carry_on(others)


async def test_frame_socket_speaks_valid_websocket(live):
    """The hand-built frames are right when they are meant to be: a masked ping is answered."""
    sock = await FrameSocket.open(live.port)
    try:
        await asyncio.wait_for(sock.read_frame(), 5 * UNIT)  # hello
        sock.send(frame(TEXT, PING_JSON))
        opcode, payload = await asyncio.wait_for(sock.read_frame(), 5 * UNIT)
        assert (opcode, payload) == (TEXT, b'{"type":"pong","id":1}')
        sock.send(frame(CLOSE, struct.pack("!H", 1000)))
        assert await sock.close_code() == 1000
    finally:
        await sock.aclose()


# --- 4001: no join within limits.join_timeout_s --------------------------------------------


@pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)
async def test_no_join_within_join_timeout_closes_with_4001(server_factory, subprotocol):
    timeout = 1.0 * UNIT
    async with server_factory(limits={"join_timeout_s": timeout}) as srv:
        await srv.create_room(ROOM)
        others = await bystanders(srv)
        started = time.monotonic()
        victim = await srv.connect(subprotocol)
        # Pings are answered, but only a join counts.
        assert (await victim.command("ping"))["type"] == "pong"
        # The maintenance loop checks every second: allow the timeout plus a few of those.
        assert await close_code_of(victim, timeout=timeout + 5) == 4001
        assert time.monotonic() - started >= timeout
        await others_carry_on(others)


# --- 4004: the room was deleted -------------------------------------------------------------


async def test_room_deleted_closes_its_members_with_4004(live):
    await live.create_room(ROOM)
    await live.create_room(OTHER_ROOM)
    members = await bystanders(live, ROOM)
    others = await bystanders(live, OTHER_ROOM)
    async with live.http() as http:
        r = await http.delete(f"/api/v1/rooms/{ROOM}")
        assert r.status_code == 204, r.text
    for member in members:
        assert await close_code_of(member) == 4004
    await others_carry_on(others)
    # The room is gone for new connections too; the connection that asked carries on.
    late = await live.connect()
    await late.send({"op": "join", "id": 1, "room": ROOM})
    reply = await late.recv()
    assert (reply["type"], reply["code"], reply["id"]) == ("error", "room_not_found", 1)
    await late.join(OTHER_ROOM)
    await sender_carries_on(late, others)


# --- refused handshakes: 404 for another path, 400 for unknown subprotocols --------------


async def _refused_status(url, **kw):
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=10 * UNIT, compression=None, **kw):
            pass
    return info.value.response.status_code


@pytest.mark.parametrize("path", ["/", "/wss", "/ws/", "/ws/extra", "/api/v1/rooms", "/WS"])
async def test_upgrade_on_another_path_gets_404(live, path):
    await live.create_room(ROOM)
    others = await bystanders(live)
    url = f"ws://127.0.0.1:{live.port}{path}"
    assert await _refused_status(url, subprotocols=["hudong.v1.json"]) == 404
    await others_carry_on(others)


async def test_upgrade_with_a_query_string_on_ws_is_accepted(live):
    async with connect(f"{live.ws_url}?v=1", subprotocols=["hudong.v1.json"]) as ws:
        assert ws.subprotocol == "hudong.v1.json"


@pytest.mark.parametrize(
    "offer", [["hudong.v2.json"], ["chat", "superchat"], ["hudong.v1"], ["HUDONG.V1.JSON"]]
)
async def test_offering_only_unknown_subprotocols_gets_400(live, offer):
    await live.create_room(ROOM)
    others = await bystanders(live)
    assert await _refused_status(live.ws_url, subprotocols=offer) == 400
    await others_carry_on(others)


@pytest.mark.parametrize(
    ("offer", "chosen"),
    [
        (["x-unknown", "hudong.v1.msgpack", "hudong.v1.json"], "hudong.v1.msgpack"),
        (["hudong.v1.json", "hudong.v1.msgpack"], "hudong.v1.json"),
        (["x-unknown", "hudong.v1.json"], "hudong.v1.json"),
    ],
)
async def test_server_picks_the_first_supported_offer(live, offer, chosen):
    async with connect(live.ws_url, subprotocols=offer, compression=None) as ws:
        assert ws.subprotocol == chosen


async def test_no_offer_gets_json(live):
    await live.create_room(ROOM)
    others = await bystanders(live)
    plain = await live.connect(None)  # offers no subprotocol
    assert plain.ws.subprotocol is None
    await plain.join(ROOM)
    await sender_carries_on(plain, others)
    # Text frames of JSON, as for hudong.v1.json.
    await plain.ws.send('{"op": "ping", "id": 99}')
    assert await plain.ws.recv() == '{"type":"pong","id":99}'


async def test_permessage_deflate_is_the_only_extension_and_without_context_takeover(live):
    """PROTOCOL.md, "Transport": an offer of permessage-deflate is answered without
    context takeover on either side (tests/test_deflate.py has the rest)."""
    async with connect(live.ws_url, subprotocols=["hudong.v1.json"]) as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert answer is not None and answer.startswith("permessage-deflate"), answer
        assert "server_no_context_takeover" in answer and "client_no_context_takeover" in answer
