"""A generic webhook: any chat that can send an HTTP POST becomes danmaku of a room.

``POST /api/v1/rooms/{id}/bridges/webhook/{channel}`` (PROTOCOL.md, "Bridges") with::

    X-Hudong-Timestamp: <Unix seconds>
    X-Hudong-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the secret>
    {"sender": "…", "name": "…", "text": "…", "id": "…"}

The secret is ``bridges.webhook.secret`` in the node's configuration, never in the room.
The signature covers the timestamp, and a timestamp further than
``bridges.webhook.max_skew_s`` from the node's clock is refused, so a recorded request
cannot be replayed later; within that window the runner drops a repeated ``id``. A bad
signature, an old timestamp or a malformed body is refused (401 or 400) and changes
nothing. The checks (:func:`verify`, :func:`parse_body`) do no I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from server.bridges.base import Adapter, BridgeError, ChatMessage, Event

SIGNATURE_HEADER = "x-hudong-signature"
TIMESTAMP_HEADER = "x-hudong-timestamp"
MAX_CHANNEL_CHARS = 64
MAX_FIELD_CHARS = 128  # sender, name and id; the text is held to limits.max_text_chars
QUEUE_SIZE = 1000  # messages waiting for the runner; more are refused with 503


class Refused(ValueError):
    """A webhook request hudong refuses: the HTTP status and error code to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Hudong-Signature`` value of a request (what a sender computes too)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    sent: str | None,
    body: bytes,
    now: float,
    max_skew_s: float,
) -> None:
    """Refuse (401) a request whose signature is not the secret's over the timestamp and
    the raw body, or whose timestamp is out of the window."""
    if not secret:
        raise Refused(401, "unauthorized", "this node has no bridges.webhook.secret set")
    if not timestamp or not sent:
        raise Refused(401, "unauthorized", "send X-Hudong-Timestamp and X-Hudong-Signature")
    if not hmac.compare_digest(signature(secret, timestamp, body).encode(), sent.encode()):
        raise Refused(401, "unauthorized", "the signature does not match the body")
    try:
        at = float(timestamp)
    except ValueError:
        raise Refused(401, "unauthorized", "X-Hudong-Timestamp is not Unix seconds") from None
    if not abs(now - at) <= max_skew_s:
        why = f"the timestamp is more than {max_skew_s:g} s from the node's clock"
        raise Refused(401, "unauthorized", why)


def parse_body(body: bytes, max_text_chars: int) -> ChatMessage:
    """The message of a (verified) body, or :class:`Refused` (400) saying what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, "malformed", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(400, "malformed", "the body must be a JSON object")
    unknown = set(data) - {"sender", "name", "text", "id"}
    if unknown:
        raise Refused(400, "invalid_field", f"unknown fields: {', '.join(sorted(unknown))}")
    fields: dict[str, str | None] = {}
    for key in ("sender", "name", "id"):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_CHARS):
            raise Refused(
                400, "invalid_field", f"{key} must be a string of at most {MAX_FIELD_CHARS}"
            )
        fields[key] = value or None
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > max_text_chars:
        raise Refused(
            400, "invalid_field", f"text must be a string of 1-{max_text_chars} characters"
        )
    if fields["sender"] is None:
        raise Refused(400, "invalid_field", "sender is required: the sender's id on its chat")
    return ChatMessage(str(fields["sender"]), text, fields["name"], fields["id"])


class WebhookAdapter(Adapter):
    """A channel fed by signed HTTP POSTs: the route pushes, the runner reads."""

    platform = "webhook"

    def __init__(self, channel: str, options: Mapping[str, Any]) -> None:
        if not 1 <= len(channel) <= MAX_CHANNEL_CHARS or not all(
            c.isascii() and (c.isalnum() or c in "-_.") for c in channel
        ):
            raise ValueError(
                f"a webhook channel is 1-{MAX_CHANNEL_CHARS} letters, digits, '-', '_' or '.'"
            )
        super().__init__(channel, options)
        self.queue: asyncio.Queue[ChatMessage] = asyncio.Queue(QUEUE_SIZE)
        self.connected = False  # taking posts: the runner shows it as connected

    def push(self, message: ChatMessage) -> None:
        """Hand the runner one verified message; :class:`Refused` (503) when it is behind."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            raise Refused(503, "bridge_busy", "the bridge is behind; try again") from None

    async def events(self, cursor: str | None) -> AsyncIterator[Event]:
        if not self.options.get("secret"):
            raise BridgeError("set bridges.webhook.secret to accept webhook posts", retry=False)
        self.connected = True
        try:
            while True:
                yield await self.queue.get()
        finally:
            self.connected = False


__all__ = ["Refused", "WebhookAdapter", "parse_body", "signature", "verify"]
