"""Bilibili's live danmaku wire format, without I/O: bytes in, packets and chat events out.

Source: bilibili-API-collect, ``docs/live/message_stream.md`` ("数据包格式", "认证包",
"心跳包", "普通包", "弹幕 (DANMU_MSG)"). A WebSocket message carries one or more packets back
to back. Each packet is a 16-byte big-endian header (packet length u32, header length u16,
protocol version u16, operation u32, sequence u32) and a body. A command packet (operation
5) of version 2 or 3 holds, zlib- or brotli-compressed, further packets of version 0 whose
bodies are JSON commands.

Parsing never raises into the caller (as in python-websockets' ``frames.py``): what breaks
the format is left out and described in :attr:`Split.problems`; the packets before it in
the same message are kept. A WebSocket message is framed on its own, so one bad message
leaves the next one readable. Inflating is capped (``limit``) so that a small compressed
body cannot make a large one.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import brotli
import orjson

from server.bridges.base import ChatMessage, Event, PlatformModeration

HEADER = struct.Struct(">IHHII")  # packet length, header length, version, operation, sequence
HEADER_BYTES = HEADER.size  # 16

# Protocol versions ("协议版本"): how the body is written.
VERSION_JSON = 0  # a plain JSON command
VERSION_PLAIN = 1  # heartbeat and auth packets, not compressed
VERSION_ZLIB = 2  # a zlib stream of packets
VERSION_BROTLI = 3  # a brotli stream of packets

# Operations ("操作码").
OP_HEARTBEAT = 2
OP_HEARTBEAT_REPLY = 3  # body: the room's popularity, u32
OP_COMMAND = 5  # body: a JSON command, or compressed packets
OP_AUTH = 7  # body: JSON {uid, roomid, protover, platform, type, key}
OP_AUTH_REPLY = 8  # body: JSON {"code": 0} when accepted

# The protover of the auth packet: 3 asks the server for brotli-compressed batches.
PROTOVER = 3


class WireError(ValueError):
    """Something breaks Bilibili's format: the message says what was expected and what came."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as the server sent it (a compressed one already opened into its packets)."""

    version: int
    op: int
    seq: int
    body: bytes


@dataclass(slots=True)
class Split:
    """What one WebSocket message held: its packets in order, and what had to be left out."""

    packets: list[Packet] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def encode(op: int, body: bytes = b"", *, version: int = VERSION_PLAIN, seq: int = 1) -> bytes:
    """One packet: the 16-byte header and the body."""
    return HEADER.pack(HEADER_BYTES + len(body), HEADER_BYTES, version, op, seq) + body


def auth_packet(room_id: int, uid: int = 0, key: str = "") -> bytes:
    """The auth packet ("认证包"), the first thing a client sends: the room's real id, the
    account (0: a guest) and the key that getDanmuInfo gave it for the room."""
    body: dict[str, Any] = {
        "uid": uid,
        "roomid": room_id,
        "protover": PROTOVER,
        "platform": "web",
        "type": 2,
    }
    if key:
        body["key"] = key
    return encode(OP_AUTH, orjson.dumps(body))


def heartbeat_packet() -> bytes:
    """A heartbeat ("心跳包"); the document allows an empty body, so the reply echoes nothing."""
    return encode(OP_HEARTBEAT)


def split(message: bytes, limit: int) -> Split:
    """The packets of one WebSocket message, compressed batches opened into the packets they
    hold. ``limit`` caps the bytes that all the message's compressed bodies may inflate to."""
    out = Split()
    _walk(message, out, [limit], nested=False)
    return out


def _walk(data: bytes, out: Split, budget: list[int], *, nested: bool) -> None:
    offset = 0
    where = "a compressed batch" if nested else "the message"
    while offset < len(data):
        left = len(data) - offset
        if left < HEADER_BYTES:
            out.problems.append(f"{left} bytes at {offset} of {where}, short of a 16-byte header")
            return
        length, header, version, op, seq = HEADER.unpack_from(data, offset)
        if header < HEADER_BYTES or header > length or length > left:
            out.problems.append(
                f"packet at {offset} of {where} says {length} bytes with a {header}-byte "
                f"header; {left} bytes are left"
            )
            return  # the lengths are untrustworthy: nothing after them can be found
        body = data[offset + header : offset + length]
        offset += length
        if op == OP_COMMAND and version in (VERSION_ZLIB, VERSION_BROTLI):
            if nested:
                out.problems.append("a compressed packet inside a compressed batch")
                continue
            try:
                inner = inflate(version, body, budget[0])
            except WireError as exc:
                out.problems.append(str(exc))
                continue
            budget[0] -= len(inner)
            _walk(inner, out, budget, nested=True)
        elif op == OP_COMMAND and version not in (VERSION_JSON, VERSION_PLAIN):
            out.problems.append(f"command packet of unknown protocol version {version}")
        else:
            out.packets.append(Packet(version, op, seq, body))


def inflate(version: int, body: bytes, limit: int) -> bytes:
    """The bytes of a compressed batch, at most ``limit`` of them; WireError when the body
    is not a whole zlib (version 2) or brotli (version 3) stream, or inflates past the cap."""
    name = "zlib" if version == VERSION_ZLIB else "brotli"
    limit = max(limit, 0)
    try:
        if version == VERSION_ZLIB:
            z = zlib.decompressobj()
            out = z.decompress(body, limit + 1)
            more, finished = bool(z.unconsumed_tail), z.eof
        else:
            b = brotli.Decompressor()
            out = b.process(body, output_buffer_limit=limit + 1)
            more, finished = not b.can_accept_more_data(), b.is_finished()
    except (zlib.error, brotli.error) as exc:
        raise WireError(f"{name} batch does not inflate: {exc}") from None
    if len(out) > limit or more:
        raise WireError(f"{name} batch inflates past {limit} bytes")
    if not finished:
        raise WireError(f"{name} batch is cut short")
    return out


def popularity(body: bytes) -> int | None:
    """The room's popularity from a heartbeat reply's body (u32), if it holds one."""
    return int.from_bytes(body[:4], "big") if len(body) >= 4 else None


def auth_code(body: bytes) -> int:
    """The code of an auth reply ({"code": 0} when accepted); WireError when it has none."""
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WireError(f"auth reply is not JSON: {body[:64]!r}") from None
    code = reply.get("code") if isinstance(reply, dict) else None
    if not _is_int(code):
        raise WireError(f"auth reply has no numeric code: {body[:64]!r}")
    return int(code)


def command(body: bytes) -> Event | None:
    """The chat event of one JSON command (DANMU_MSG, ROOM_BLOCK_MSG), or None for commands
    a bridge has no use for (gifts, entries, rankings). WireError when it is not a JSON
    object with a ``cmd``, or when a command the bridge reads lacks what the document says
    it holds."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WireError(f"command is not JSON: {body[:64]!r}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        raise WireError(f"command is not an object with a cmd: {body[:64]!r}")
    # Some servers have sent "DANMU_MSG:4:0:2:2:2:0": the name is what comes before ':'.
    name = obj["cmd"].split(":", 1)[0]
    reader = _READERS.get(name)
    return reader(obj) if reader else None


def _danmaku(obj: Mapping[str, Any]) -> ChatMessage:
    """DANMU_MSG: info[1] the text, info[2] = [uid, name, ...], info[0][4] the send time
    (ms), info[0][7] a hash of the sender, info[0][15].extra a JSON string with id_str."""
    info = obj.get("info")
    if not isinstance(info, list) or len(info) < 3:
        raise WireError("DANMU_MSG without info[0], info[1] and info[2]")
    meta, text, user = info[0], info[1], info[2]
    if not isinstance(meta, list) or not isinstance(user, list) or not user:
        raise WireError("DANMU_MSG whose info[0] or info[2] is not a list")
    if not isinstance(text, str) or not text.strip():
        raise WireError("DANMU_MSG without a text in info[1]")
    uid = user[0]
    if not _is_int(uid) or uid < 0:
        raise WireError(f"DANMU_MSG whose sender id info[2][0] is {uid!r}")
    name = user[1] if len(user) > 1 and isinstance(user[1], str) and user[1] else None
    user_hash = meta[7] if len(meta) > 7 and isinstance(meta[7], str) else ""
    if uid > 0:
        sender = str(uid)
    elif user_hash.isalnum():
        # A guest connection sees every sender as uid 0 (the document's "再注"); the hash
        # in info[0][7] still tells senders apart, so each keeps their own vote.
        sender = f"~{user_hash.lower()}"
    else:
        raise WireError("DANMU_MSG with neither a sender id nor a sender hash")
    sent_ms = meta[4] if len(meta) > 4 and _is_int(meta[4]) and meta[4] > 0 else None
    at = sent_ms / 1000 if sent_ms is not None else _stamp(info)
    message_id = _id_str(meta)
    if message_id is None:
        # No id from the platform: one made of what the platform sent, so that the same
        # message sent again (after a reconnect) has the same id and the runner drops it.
        seed = orjson.dumps([sender, sent_ms, meta[5] if len(meta) > 5 else None, text])
        message_id = "h" + hashlib.sha256(seed).hexdigest()[:24]
    return ChatMessage(sender=sender, text=text, name=name, id=message_id, at=at)


def _id_str(meta: list[Any]) -> str | None:
    extra_holder = meta[15] if len(meta) > 15 and isinstance(meta[15], dict) else {}
    extra = extra_holder.get("extra")
    if not isinstance(extra, str):
        return None
    try:
        parsed = orjson.loads(extra)
    except orjson.JSONDecodeError:
        return None
    found = parsed.get("id_str") if isinstance(parsed, dict) else None
    return found if isinstance(found, str) and 0 < len(found) <= 128 else None


def _stamp(info: list[Any]) -> float | None:
    """info[9] is {"ct": ..., "ts": <Unix seconds>} where present."""
    stamp = info[9] if len(info) > 9 and isinstance(info[9], dict) else {}
    ts = stamp.get("ts")
    return float(ts) if _is_int(ts) and ts > 0 else None


def _block(obj: Mapping[str, Any]) -> PlatformModeration:
    """ROOM_BLOCK_MSG ("指定观众禁言"), a sender muted in the room: {"uid", "uname", "data":
    {"uid", "uname", "operator"}}; the document's example has the top uid as a string.

    No command of the document says which danmaku was deleted: RECALL_DANMU_MSG is listed
    as "???", and its ``target_id`` has been seen to be a uid, not a message's id
    (bilibili-API-collect issue 1366), so the bridge reads no deletions."""
    data = obj.get("data")
    for uid in (data.get("uid") if isinstance(data, dict) else None, obj.get("uid")):
        if _is_int(uid) and uid > 0:
            return PlatformModeration(action="ban", sender=str(uid))
        if isinstance(uid, str) and uid.isdigit() and int(uid) > 0:
            return PlatformModeration(action="ban", sender=str(int(uid)))
    raise WireError("ROOM_BLOCK_MSG without the blocked sender's uid")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_READERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "DANMU_MSG": _danmaku,
    "ROOM_BLOCK_MSG": _block,
}
