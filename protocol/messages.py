"""Messages of protocol v1 (PROTOCOL.md, "Commands" and "Server messages").

Clients send *commands*: maps with an ``op`` and an optional integer ``id`` that the
server echoes in the ``ack`` or ``error`` it answers with. :func:`parse_command`
turns a decoded map into a typed command or raises :class:`CommandError` carrying
the error code of :mod:`protocol.codes`; it never raises anything else.

The server sends maps with a ``type``; the builders at the bottom make them, so
field names are written in one place.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocol.codes import ERROR_BY_NAME

PROTOCOL_VERSION = "hudong.v1"

ROOM_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DANMAKU_MODES = ("scroll", "top", "bottom")
DEFAULT_COLOR = "#ffffff"
MAX_NAME_CHARS = 32
MAX_TOKEN_CHARS = 2048  # well under limits.max_command_bytes, so the check is reachable
MAX_LANG_CHARS = 35  # BCP 47 language tags are rarely longer (RFC 5646, 4.4.1)
LANG_RE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
MAX_ID = 2**53 - 1  # the largest integer a JavaScript client can hold exactly

DanmakuMode = Literal["scroll", "top", "bottom"]


class CommandError(Exception):
    """A command that the server refuses; becomes an ``error`` message."""

    def __init__(self, code: str, message: str, id: int | None = None, **extra: Any) -> None:
        assert code in ERROR_BY_NAME, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id
        self.extra = extra


def store_unavailable(cid: int | None = None) -> CommandError:
    """The retryable refusal of a command the store could not take: nothing changed."""
    return CommandError(
        "store_unavailable",
        "the store cannot be reached; try again shortly",
        cid,
        retry_after_ms=1000,
    )


@dataclass(frozen=True, slots=True)
class Join:
    id: int | None
    room: str
    token: str | None
    name: str | None
    lang: str | None = None  # the viewer's language tag, for its default name


@dataclass(frozen=True, slots=True)
class Danmaku:
    id: int | None
    text: str
    color: str
    mode: DanmakuMode


@dataclass(frozen=True, slots=True)
class Ping:
    id: int | None


@dataclass(frozen=True, slots=True)
class AskSnapshot:
    """A client that missed a ``state`` message asks for its room's snapshot."""

    id: int | None


@dataclass(frozen=True, slots=True)
class Participate:
    """A viewer's command on an interaction or on the room's own one (PROTOCOL.md,
    "Interactions"): ``vote``, ``pick``, ``checkin``, ``post``, ``react`` …

    ``fields`` is the whole command map: the kind's rules read what they need
    (``option``, ``ranking``, ``slot``, ``text`` …) and refuse what does not fit.
    ``key`` is the idempotency key (None for ops that take none, like ``react``).
    """

    id: int | None
    op: str
    key: str | None
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Host:
    """A host or moderator operation over the WebSocket (same as the REST routes)."""

    id: int | None
    action: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bridge:
    """One event of a platform's chat, sent by a ``hudong bridge`` process with a host token
    (PROTOCOL.md, "Bridges"): a message to become a danmaku, or the platform's moderation."""

    id: int | None
    platform: str
    channel: str
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpRule:
    """How the parser checks one viewer command: whether it names an ``interaction``
    and carries an idempotency ``key``. The server's registry of interaction kinds
    makes the table (server/interactions/registry.py); the protocol names no kind."""

    names_interaction: bool = True
    keyed: bool = True


Command = Join | Danmaku | Ping | AskSnapshot | Participate | Host | Bridge
CORE_OPS = ("join", "danmaku", "ping", "host", "bridge", "snapshot")
# Commands that change state carry a client-made idempotency key (PROTOCOL.md,
# "Idempotency keys"); a retry with the same key has its effect once.
KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def clean_text(value: str) -> str:
    """Trim, fold line breaks and tabs into spaces, and drop other control characters.

    Danmaku are one line on an overlay; invisible control and format characters
    (bidi overrides among them) would let one message disturb the others.
    """
    if value.isprintable():  # nothing to fold or drop (most texts): one C-level scan
        return value.strip()
    out = []
    for ch in value:
        cat = unicodedata.category(ch)
        if ch in "\r\n\t":
            out.append(" ")
        elif cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def _id(obj: dict[str, Any]) -> int | None:
    value = obj.get("id")
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise CommandError("invalid_field", f"id must be an integer 0..{MAX_ID}, got {value!r:.40}")
    return value


def _opt_str(obj: dict[str, Any], key: str, cid: int | None, limit: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CommandError(
            "invalid_field", f"{key} must be a string, got {type(value).__name__}", cid
        )
    if len(value) > limit:
        raise CommandError("invalid_field", f"{key} is longer than {limit} characters", cid)
    return value


def _key(obj: dict[str, Any], cid: int | None) -> str:
    key = obj.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise CommandError(
            "invalid_field", f"key must be a string matching {KEY_RE.pattern}, got {key!r:.40}", cid
        )
    return key


def parse_command(
    obj: Any, *, max_text_chars: int, ops: Mapping[str, OpRule] | None = None
) -> Command:
    """Validate a decoded frame; raise :class:`CommandError` with the documented code.
    ``ops``: the viewer commands of the server's interaction kinds."""
    if not isinstance(obj, dict):
        raise CommandError("malformed", f"a command must be a map, got {type(obj).__name__}")
    cid = _id(obj)
    op = obj.get("op")
    if not isinstance(op, str):
        raise CommandError("malformed", "a command needs an 'op' string", cid)
    if op == "danmaku":
        text = obj.get("text")
        if not isinstance(text, str):
            raise CommandError("invalid_field", "danmaku needs a 'text' string", cid)
        text = clean_text(text)
        if not text:
            raise CommandError("empty_text", "danmaku text is empty", cid)
        if len(text) > max_text_chars:
            raise CommandError(
                "text_too_long",
                f"danmaku text has {len(text)} characters; the limit is {max_text_chars}",
                cid,
                limit=max_text_chars,
            )
        color = obj.get("color", DEFAULT_COLOR)
        if not isinstance(color, str) or not COLOR_RE.match(color):
            raise CommandError("invalid_field", f"color must be '#rrggbb', got {color!r:.40}", cid)
        mode = obj.get("mode", "scroll")
        if mode not in DANMAKU_MODES:
            raise CommandError(
                "invalid_field",
                f"mode must be one of {', '.join(DANMAKU_MODES)}, got {mode!r:.40}",
                cid,
            )
        return Danmaku(cid, text, color.lower(), mode)
    if op == "join":
        room = obj.get("room")
        if not isinstance(room, str) or not ROOM_ID_RE.match(room):
            raise CommandError(
                "invalid_field", f"room must match {ROOM_ID_RE.pattern}, got {room!r:.40}", cid
            )
        token = _opt_str(obj, "token", cid, MAX_TOKEN_CHARS)
        name = _opt_str(obj, "name", cid, 4 * MAX_NAME_CHARS)
        if name is not None:
            name = clean_text(name)[:MAX_NAME_CHARS] or None
        lang = _opt_str(obj, "lang", cid, MAX_LANG_CHARS)
        if lang is not None and not LANG_RE.match(lang):
            raise CommandError(
                "invalid_field", f"lang must be a language tag such as zh-CN, got {lang!r:.40}", cid
            )
        return Join(cid, room, token, name, lang)
    if op == "ping":
        return Ping(cid)
    if op == "snapshot":
        return AskSnapshot(cid)
    rule = (ops or {}).get(op)
    if rule is not None:
        key = _key(obj, cid) if rule.keyed else None
        if rule.names_interaction:
            interaction = obj.get("interaction")
            if not isinstance(interaction, str) or not ROOM_ID_RE.match(interaction):
                raise CommandError(
                    "invalid_field",
                    f"{op} needs an 'interaction' id, got {interaction!r:.40}",
                    cid,
                )
        return Participate(cid, op, key, obj)
    if op == "host":
        action = obj.get("action")
        if not isinstance(action, str) or not 1 <= len(action) <= 32:
            raise CommandError("invalid_field", "host needs an 'action' string", cid)
        return Host(cid, action, obj)
    if op == "bridge":
        platform, channel, event = obj.get("platform"), obj.get("channel"), obj.get("event")
        if not isinstance(platform, str) or not 1 <= len(platform) <= 32:
            raise CommandError("invalid_field", "bridge needs a 'platform' string", cid)
        if not isinstance(channel, str) or not 1 <= len(channel) <= 64:
            raise CommandError("invalid_field", "bridge needs a 'channel' string", cid)
        if not isinstance(event, dict):
            raise CommandError("invalid_field", "bridge needs an 'event' map", cid)
        return Bridge(cid, platform, channel, event)
    known = ", ".join([*CORE_OPS, *(ops or {})])
    raise CommandError("unknown_op", f"unknown op {op!r:.40}; expected one of {known}", cid)


# --- server messages -------------------------------------------------------------


def hello(*, server: str, heartbeat_ms: int, limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "server": server,
        "heartbeat_ms": heartbeat_ms,
        "limits": limits,
    }


def ack(cid: int | None, **fields: Any) -> dict[str, Any]:
    return {"type": "ack", "id": cid, **fields}


def error(err: CommandError) -> dict[str, Any]:
    return {"type": "error", "id": err.id, "code": err.code, "message": err.message, **err.extra}


def joined(
    cid: int | None, you: dict[str, Any], snapshot: dict[str, Any], *, token: str | None = None
) -> dict[str, Any]:
    """``token``: for an anonymous viewer, its own token to join with again later."""
    message = {"type": "joined", "id": cid, "you": you, "snapshot": snapshot}
    if token is not None:
        message["token"] = token
    return message


def batch(room: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "batch", "room": room, "seq": seq, "events": events}


def state(
    room: str,
    base: int,
    version: int,
    interactions: dict[str, Any],
    patches: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Changes against ``base`` (PROTOCOL.md, "State messages"; :mod:`protocol.delta`):
    whole views in ``interactions``, merge patches in ``patches``."""
    message: dict[str, Any] = {"type": "state", "room": room, "base": base, "version": version}
    message["interactions"] = interactions
    if patches:
        message["patches"] = patches
    return message


def online(room: str, count: int) -> dict[str, Any]:
    return {"type": "online", "room": room, "online": count}


def pong(cid: int | None) -> dict[str, Any]:
    return {"type": "pong", "id": cid}
