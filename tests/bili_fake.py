"""A local Bilibili live danmaku server for the bridge's tests, and the sample frames.

Built from bilibili-API-collect's ``docs/live/message_stream.md`` and independent of
``server/bridges/bilibili_wire.py``: it packs and unpacks packets with its own few lines,
so a mistake in the codec cannot hide in both. The server checks the client's auth packet,
answers it with ``{"code": ...}``, sends each connection the messages a test scripted for
it, and answers heartbeats with the room's popularity.

``python -m tests.bili_fake`` writes the sample frames of ``tests/data/bridges/bili/``
(see the README there).
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

SAMPLES = Path(__file__).resolve().parent / "data" / "bridges" / "bili"


# --- packets, per the document's header table ---------------------------------------


def packet(op: int, body: bytes = b"", *, version: int = 0, seq: int = 0) -> bytes:
    """One packet: u32 packet length, u16 header length (16), u16 version, u32 op, u32 seq."""
    return struct.pack(">IHHII", 16 + len(body), 16, version, op, seq) + body


def unpack(data: bytes) -> tuple[int, int, int, bytes]:
    """(version, op, seq, body) of a message holding exactly one packet."""
    length, header, version, op, seq = struct.unpack_from(">IHHII", data)
    if header != 16 or length != len(data):
        raise ValueError(f"bad packet header: length {length}, header {header}")
    return version, op, seq, data[16:]


def command(obj: dict[str, Any]) -> bytes:
    """A plain command packet (version 0, operation 5)."""
    return packet(5, json.dumps(obj, ensure_ascii=False).encode())


def zlib_batch(*objs: dict[str, Any]) -> bytes:
    """Commands in one zlib-compressed packet (version 2)."""
    return packet(5, zlib.compress(b"".join(command(o) for o in objs)), version=2)


def brotli_batch(*objs: dict[str, Any]) -> bytes:
    """Commands in one brotli-compressed packet (version 3)."""
    return packet(5, brotli.compress(b"".join(command(o) for o in objs)), version=3)


def danmu(
    uid: int,
    text: str,
    *,
    name: str = "",
    id_str: str | None = None,
    ms: int = 1723979200649,
    rnd: int = -1312973962,
    user_hash: str = "0bc8acd0",
) -> dict[str, Any]:
    """A DANMU_MSG command shaped as the document's example (its "info" array)."""
    extra: dict[str, Any] = {"send_from_me": False, "mode": 0, "content": text}
    if id_str is not None:
        extra["id_str"] = id_str
    meta: list[Any] = [0, 1, 25, 9920249, ms, rnd, 0, user_hash, 0, 0, 0, "", 0, "{}", "{}"]
    meta += [{"extra": json.dumps(extra, ensure_ascii=False), "mode": 0}, {}, 0]
    return {
        "cmd": "DANMU_MSG",
        "dm_v2": "",
        "info": [
            meta,
            text,
            [uid, name or f"user{uid}", 0, 0, 0, 10000, 1, ""],
            [],
            [39, 0, 10512625, 42523, 2],
            ["", ""],
            0,
            0,
            None,
            {"ct": "AFFF4206", "ts": ms // 1000},
        ],
    }


def block(uid: int, name: str = "blocked") -> dict[str, Any]:
    """ROOM_BLOCK_MSG ("指定观众禁言") as the document's example: the uid a string on top."""
    return {
        "cmd": "ROOM_BLOCK_MSG",
        "data": {"dmscore": 30, "operator": 2, "uid": uid, "uname": name},
        "uid": str(uid),
        "uname": name,
    }


def recall(target_id: int) -> dict[str, Any]:
    """RECALL_DANMU_MSG as the document's example ("???": what target_id is, it does not say)."""
    return {"cmd": "RECALL_DANMU_MSG", "data": {"recall_type": 2, "target_id": target_id}}


# --- the server ------------------------------------------------------------------------


@dataclass
class Session:
    """What one connection gets after its auth reply: these messages, then a close or not."""

    messages: list[bytes | str] = field(default_factory=list)
    close: bool = False


class FakeBilibili:
    """A Bilibili danmaku server on a loopback port: checks auths, answers heartbeats, and
    sends each connection its scripted session (``sessions[i]`` to the i-th connection)."""

    def __init__(self, *, auth_code: int = 0, reply_auth: bool = True) -> None:
        self.auth_code = auth_code
        self.reply_auth = reply_auth
        self.popularity = 2466
        self.before_auth_reply: list[bytes] = []  # sent before the auth reply
        self.sessions: list[Session] = []
        self.auths: list[dict[str, Any]] = []
        self.auth_headers: list[tuple[int, int, int]] = []  # version, op, seq
        self.paths: list[str] = []
        self.heartbeats = 0
        self.beat = asyncio.Event()  # set at each heartbeat
        self.connections: list[ServerConnection] = []
        self.bad_packets: list[str] = []
        self.url = ""
        self._server: Server | None = None

    async def __aenter__(self) -> FakeBilibili:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/sub"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def push(self, message: bytes) -> None:
        """Send a message on the newest connection now."""
        await self.connections[-1].send(message)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        self.connections.append(ws)
        index = len(self.auths)
        try:
            first = await ws.recv()
            version, op, seq, body = unpack(first if isinstance(first, bytes) else b"")
            if op != 7:
                raise ValueError(f"first packet has operation {op}, not 7 (auth)")
            self.auth_headers.append((version, op, seq))
            self.auths.append(json.loads(body))
        except (ValueError, struct.error) as exc:
            self.bad_packets.append(str(exc))
            await ws.close(1002)
            return
        try:
            for early in self.before_auth_reply:
                await ws.send(early)
            if not self.reply_auth:
                await ws.wait_closed()
                return
            reply = json.dumps({"code": self.auth_code}).encode()
            await ws.send(packet(8, reply, version=1, seq=1))
            session = self.sessions[index] if index < len(self.sessions) else Session()
            for message in session.messages:
                await ws.send(message)
            if session.close:
                await ws.close()
                return
            async for message in ws:
                version, op, seq, body = unpack(message if isinstance(message, bytes) else b"")
                if op == 2:
                    self.heartbeats += 1
                    self.beat.set()
                    await ws.send(packet(3, struct.pack(">I", self.popularity), version=1))
        except ConnectionClosed:
            pass


# --- the sample frames -----------------------------------------------------------------

# Frames exactly as the document prints them (its hexdumps of "认证包", "认证包回复" and
# "普通包", the last a brotli-compressed WATCHED_CHANGE), line by line.
DOC_AUTH = """
0000 00ff 0010 0001 0000 0007 0000 0001 7b22 7569 6422 3a31 3630 3134 3836 3234
2c22 726f 6f6d 6964 223a 3232 3630 3831 3132 2c22 7072 6f74 6f76 6572 223a 332c
2270 6c61 7466 6f72 6d22 3a22 7765 6222 2c22 7479 7065 223a 322c 226b 6579 223a
2230 7670 5448 5737 7757 556e 6c6f 5270 5251 6b47 764e 626e 7776 7364 6d2d 7159
4777 4243 5875 2d59 5164 6e57 7653 5547 7373 4139 7962 4b68 7932 6a78 3952 6f63
4150 4651 6d54 4f6b 5277 6b4b 687a 4479 4839 5054 756f 5468 6834 4630 7562 584c
4964 6e69 3734 5539 304b 4242 6972 3248 7451 3941 3777 674b 3438 4b7a 495f 5a5a
3838 7557 4e59 6652 4f48 6964 4e6a 3732 7061 796e 3479 3071 4268 513d 3d22 7d
"""
DOC_AUTH_REPLY = """
0000 001a 0010 0001 0000 0008 0000 0001 7b22 636f 6465 223a 307d
"""
DOC_BROTLI = """
0000 0086 0010 0003 0000 0005 0000 0000 8b38 8000 0000 7200 1000 0000 0000 0500
0000 007b 2263 6d64 223a 2257 4154 4348 4544 5f43 4841 4e47 4522 2c22 6461 7461
223a 7b22 6e75 6d22 3a32 3230 3937 2c22 7465 7874 5f73 6d61 6c6c 223a 2232 2e32
e4b8 8722 2c22 7465 7874 5f6c 6172 6765 223a 2232 2e32 e4b8 87e4 baba e79c 8be8
bf87 227d 7d03
"""


def samples() -> dict[str, bytes]:
    """The sample frames by file name (tests/data/bridges/bili/README.md)."""
    first = danmu(
        6088969, "白花300块[热]", name="tim1997", id_str="364b06e3c561af3d5921f1253d66c1d575"
    )
    return {
        "auth_doc.bin": bytes.fromhex(DOC_AUTH),
        "auth_reply.bin": bytes.fromhex(DOC_AUTH_REPLY),
        "watched_change_brotli.bin": bytes.fromhex(DOC_BROTLI),
        "heartbeat_reply.bin": packet(3, struct.pack(">I", 2466), version=1, seq=0),
        "danmu_plain.bin": command(first),
        "danmu_zlib_batch.bin": zlib_batch(
            danmu(1001, "1", id_str="a1"),
            danmu(1002, "２", id_str="a2"),
            danmu(1003, "红色", id_str="a3"),
        ),
        "danmu_brotli_batch.bin": brotli_batch(
            danmu(1004, "A", id_str="b1"),
            block(1005),
            danmu(0, "加个胸针", name="用***", user_hash="9f3c2a11", ms=1723979201000),
            recall(525503743),
        ),
    }


def write_samples() -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    for name, data in samples().items():
        (SAMPLES / name).write_bytes(data)


if __name__ == "__main__":
    write_samples()
