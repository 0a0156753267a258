"""``hudong bridge``: a bridge in a process of its own, sending into a room over the WebSocket.

The process runs one adapter (its credentials from its own ``[bridges]`` configuration),
joins the room with a host token like any client, and sends each chat event as a ``bridge``
command (PROTOCOL.md, "Bridges")::

    {"op": "bridge", "id": 7, "platform": "twitch", "channel": "somelogin",
     "event": {"sender": "1337", "name": "ronni", "text": "hi", "id": "…", "at": 1700000000.5}}
    {"op": "bridge", "id": 8, "platform": "twitch", "channel": "somelogin",
     "event": {"action": "ban", "sender": "1337"}}

The node takes it exactly as it takes an event of a bridge it runs itself
(:meth:`server.bridges.runner.Bridges.remote`): the same identity, repeats, filter, limits
and moderation; the ``ack`` says what happened (``event``, ``duplicate``, ``held``) and a
refusal is the documented error. Each event waits for its answer, so the order holds. The
process reads everything the node sends at once (the room's batches reach a host
connection too), so a quiet chat never makes it a slow consumer. It reconnects to the
platform and to the node with full-jitter backoff, sending an event the node had not
answered again (the node drops a repeated id); its cursor is kept in memory (a restarted
process starts from the platform's present).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import orjson
import websockets

from protocol.messages import CommandError
from server.bridges.base import Adapter, BridgeError, ChatMessage, Event, PlatformModeration

log = logging.getLogger("hudong.bridges.remote")

MAX_FIELD_CHARS = 128
ACK_TIMEOUT_S = 30.0


def event_to_wire(event: Event) -> dict[str, Any]:
    """An adapter's event as the ``event`` of a ``bridge`` command."""
    if isinstance(event, ChatMessage):
        wire: dict[str, Any] = {"sender": event.sender, "text": event.text}
        for key in ("name", "id", "at", "cursor"):
            value = getattr(event, key)
            if value is not None:
                wire[key] = value
        return wire
    out: dict[str, Any] = {"action": event.action}
    for key in ("message_id", "sender", "seconds"):
        value = getattr(event, key)
        if value is not None:
            out[key] = value
    return out


def _text(data: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_FIELD_CHARS:
        raise CommandError("invalid_field", f"the event's {key!r} must be a string of 1-128")
    return value


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise CommandError("invalid_field", f"the event's {key!r} must be a number of seconds")
    return float(value)


def event_from_wire(data: Mapping[str, Any], max_text_chars: int) -> Event:
    """The ``event`` of a ``bridge`` command, or ``invalid_field`` saying what is wrong."""
    action = data.get("action")
    if action is None:
        unknown = set(data) - {"sender", "text", "name", "id", "at", "cursor"}
        text = data.get("text")
        if unknown or not isinstance(text, str) or not 1 <= len(text) <= 4 * max_text_chars:
            raise CommandError(
                "invalid_field",
                "a message event is {sender, text, name?, id?, at?, cursor?} with a text",
            )
        return ChatMessage(
            sender=str(_text(data, "sender", required=True)),
            text=text,
            name=_text(data, "name"),
            id=_text(data, "id"),
            at=_number(data, "at"),
            cursor=_text(data, "cursor"),
        )
    if action not in ("delete", "ban", "timeout") or set(data) - {
        "action",
        "message_id",
        "sender",
        "seconds",
    }:
        raise CommandError("invalid_field", "a moderation event is {action: delete|ban|timeout, …}")
    return PlatformModeration(
        action, message_id=_text(data, "message_id"), sender=_text(data, "sender"),
        seconds=_number(data, "seconds"),
    )  # fmt: skip


class RemoteBridge:
    """The ``hudong bridge`` process: one adapter's events into one room, over the WebSocket."""

    def __init__(
        self,
        adapter: Adapter,
        ws_url: str,
        room: str,
        token: str,
        *,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.adapter = adapter
        self.ws_url = ws_url
        self.room = room
        self.token = token
        self.backoff = (backoff_min_s, backoff_max_s)
        self.cursor: str | None = None
        self.sent = 0
        self.refused: dict[str, int] = {}
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._unsent: Event | None = None

    async def run(self) -> None:
        """Until cancelled, or until the platform or the node refuses for good."""
        attempt = 0
        while True:
            try:
                async with websockets.connect(
                    self.ws_url, subprotocols=[websockets.Subprotocol("hudong.v1.json")],
                    compression=None, open_timeout=10,
                ) as ws:  # fmt: skip
                    # Read everything the node sends (the room's batches too) at once, so
                    # the node never sees a slow consumer while the chat is quiet.
                    reader = asyncio.get_running_loop().create_task(self._read(ws))
                    try:
                        await self._join(ws)
                        log.info("bridge %s:%s joined %s", self.adapter.platform,
                                 self.adapter.channel, self.room)  # fmt: skip
                        if self._unsent is not None:  # what the last connection did not answer
                            await self._send(ws, self._unsent)
                        async for event in self.adapter.events(self.cursor):
                            attempt = 0
                            await self._send(ws, event)
                    finally:
                        reader.cancel()
                delay = random.uniform(0, self.backoff[0])
            except BridgeError as exc:
                if not exc.retry:
                    raise
                log.warning("bridge: %s; reconnecting", exc)
                delay = self._delay(attempt)
                attempt += 1
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                log.warning("bridge: the node at %s: %s; reconnecting", self.ws_url, exc)
                delay = self._delay(attempt)
                attempt += 1
            await asyncio.sleep(delay)

    def _delay(self, attempt: int) -> float:
        low, high = self.backoff
        return random.uniform(0, min(high, low * 2 ** min(attempt, 30)))  # full jitter

    async def _read(self, ws: Any) -> None:
        try:
            async for frame in ws:
                message = orjson.loads(frame)
                cid = message.get("id") if isinstance(message, dict) else None
                if isinstance(cid, int):
                    waiter = self._pending.pop(cid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
        except (websockets.WebSocketException, orjson.JSONDecodeError, OSError):
            pass
        finally:
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(websockets.ConnectionClosedError(None, None))
            self._pending.clear()

    async def _call(self, ws: Any, command: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        cid = command["id"] = self._next_id
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = waiter
        await ws.send(orjson.dumps(command).decode())
        return await asyncio.wait_for(waiter, ACK_TIMEOUT_S)

    async def _join(self, ws: Any) -> None:
        reply = await self._call(ws, {"op": "join", "room": self.room, "token": self.token})
        if reply.get("type") != "joined":
            raise BridgeError(f"the node refused the join: {reply.get('message')}", retry=False)

    async def _send(self, ws: Any, event: Event) -> None:
        command = {
            "op": "bridge",
            "platform": self.adapter.platform,
            "channel": self.adapter.channel,
            "event": event_to_wire(event),
        }
        self._unsent = event  # sent again after a reconnect until answered (ids drop repeats)
        reply = await self._call(ws, command)
        self._unsent = None
        if reply.get("type") == "error":
            code = str(reply.get("code"))
            if code in ("forbidden", "unauthorized"):
                raise BridgeError(f"the node refused: {reply.get('message')}", retry=False)
            self.refused[code] = self.refused.get(code, 0) + 1
        elif not reply.get("duplicate"):
            self.sent += 1
        if isinstance(event, ChatMessage) and event.cursor is not None:
            self.cursor = event.cursor


__all__ = ["RemoteBridge", "event_from_wire", "event_to_wire"]
