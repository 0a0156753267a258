"""The Bilibili bridge: one live room's danmaku, read over Bilibili's WebSocket protocol.

The wire format (packets, zlib and brotli batches, commands) is in
:mod:`server.bridges.bilibili_wire`; this module moves its bytes. The order is that of
bilibili-API-collect's ``docs/live/message_stream.md``: open the WebSocket, send the auth
packet within 5 s, wait for the auth reply, then send a heartbeat every 30 s (the server
closes a connection that sends none for 60 s) and read commands.

The real server wants, for the room's real id, a key that the ``getDanmuInfo`` API gives
the account that connects; the WebSocket URL, the account's uid and the key come from the
node's configuration (``[bridges.bili]``). A guest (uid 0, no key) is let in too, but sees
every sender's uid as 0 and names masked with ``*``: senders are then told apart by the
hash of their uid that each danmaku carries, as ``~<hash>``.

The channel is the room's real id: a short id (a room's vanity number) is not resolved,
as that takes another API. Moderation: ROOM_BLOCK_MSG, a sender muted in the room, becomes
a ``ban`` (the document gives no length); no command the document explains names a
deleted danmaku (see :func:`server.bridges.bilibili_wire._block`).

Bilibili offers no cursor: after a reconnect the chat goes on from the moment of
reconnecting. A message that arrives twice has the same :attr:`ChatMessage.id` both times
(the platform's ``id_str``, else a digest of what it sent), so the runner drops the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from server.bridges import bilibili_wire as wire
from server.bridges.base import Adapter, BridgeError, Event

log = logging.getLogger(__name__)

# The defaults of [bridges.bili] (server/config.py documents each).
DEFAULTS: Mapping[str, Any] = {
    "url": "wss://broadcastlv.chat.bilibili.com/sub",
    "uid": 0,
    "key": "",
    "heartbeat_s": 30.0,
    "connect_timeout_s": 10.0,
    "max_message_bytes": 1 << 20,
    "max_inflated_bytes": 4 << 20,
}
# The server answers each heartbeat; a connection silent for this many heartbeat periods
# is taken for dead (the server itself gives up after 60 s, two periods).
SILENT_PERIODS = 2.5


class BilibiliAdapter(Adapter):
    """Reads one Bilibili live room's danmaku and mutes of senders as hudong events.

    ``skipped`` counts what was left out as malformed and ``last_problem`` says what the
    last such thing was, for the runner's metrics and the console."""

    platform = "bili"

    def __init__(self, channel: str, options: Mapping[str, Any]) -> None:
        super().__init__(channel, options)
        room = channel.strip()
        if not room.isascii() or not room.isdigit() or not 0 < int(room) < 1 << 63:
            raise BridgeError(
                f"a Bilibili room id is a positive number, got {channel!r}", retry=False
            )
        self.room_id = int(room)
        settings = {**DEFAULTS, **options}
        try:
            self.url = str(settings["url"])
            self.uid = int(settings["uid"])
            self.key = str(settings["key"])
            self.heartbeat_s = float(settings["heartbeat_s"])
            self.connect_timeout_s = float(settings["connect_timeout_s"])
            self.max_message_bytes = int(settings["max_message_bytes"])
            self.max_inflated_bytes = int(settings["max_inflated_bytes"])
        except (TypeError, ValueError) as exc:
            raise BridgeError(f"bridges.bili: {exc}", retry=False) from None
        sizes = (self.heartbeat_s, self.connect_timeout_s)
        if min(*sizes, self.max_message_bytes, self.max_inflated_bytes) <= 0:
            raise BridgeError(
                "bridges.bili: heartbeat_s, connect_timeout_s, max_message_bytes and "
                "max_inflated_bytes must be more than 0",
                retry=False,
            )
        self.skipped = 0
        self.last_problem: str | None = None
        self.popularity: int | None = None  # from the last heartbeat reply

    async def events(self, cursor: str | None) -> AsyncIterator[Event]:
        """Connect, authenticate and yield the room's events until cancelled (``cursor`` is
        ignored: Bilibili has none). BridgeError when the connection fails or closes, when
        the server refuses the key (``retry`` false) or answers outside the protocol."""
        del cursor
        try:
            async with connect(
                self.url,
                open_timeout=self.connect_timeout_s,
                max_size=self.max_message_bytes,
                # The protocol's own heartbeat keeps the connection alive and shows it is.
                ping_interval=None,
                close_timeout=self.connect_timeout_s,
            ) as ws:
                await ws.send(wire.auth_packet(self.room_id, self.uid, self.key))
                async with contextlib.aclosing(self._read(ws)) as read:
                    async for event in read:
                        yield event
        except ConnectionClosed as exc:
            raise BridgeError(f"bili room {self.room_id}: the server closed: {exc}") from None
        except TimeoutError:
            raise BridgeError(f"bili room {self.room_id}: no answer from {self.url}") from None
        except InvalidURI as exc:
            raise BridgeError(f"bridges.bili.url: {exc}", retry=False) from None
        except (OSError, WebSocketException) as exc:
            raise BridgeError(f"bili room {self.room_id}: cannot connect: {exc}") from None

    async def _read(self, ws: ClientConnection) -> AsyncGenerator[Event, None]:
        heartbeat: asyncio.Task[None] | None = None
        try:
            while True:
                wait = self.connect_timeout_s if heartbeat is None else self.silence_s
                try:
                    async with asyncio.timeout(wait):
                        message = await ws.recv()
                except TimeoutError:
                    what = (
                        "no auth reply"
                        if heartbeat is None
                        else "nothing, not even a heartbeat reply,"
                    )
                    raise BridgeError(f"bili room {self.room_id}: {what} in {wait:g} s") from None
                if isinstance(message, str):
                    self._skip(f"a text message ({len(message)} characters), not packets")
                    continue
                found = wire.split(message, self.max_inflated_bytes)
                for problem in found.problems:
                    self._skip(problem)
                for packet in found.packets:
                    if packet.op == wire.OP_AUTH_REPLY and heartbeat is None:
                        self._check_auth(packet.body)
                        heartbeat = asyncio.create_task(self._beat(ws))
                    elif heartbeat is None:
                        raise BridgeError(
                            f"bili room {self.room_id}: operation {packet.op} before the "
                            "auth reply (operation 8): is bridges.bili.url a danmaku server?"
                        )
                    elif packet.op == wire.OP_HEARTBEAT_REPLY:
                        self.popularity = wire.popularity(packet.body)
                    elif packet.op == wire.OP_COMMAND:
                        try:
                            event = wire.command(packet.body)
                        except wire.WireError as exc:
                            self._skip(str(exc))
                            continue
                        if event is not None:
                            yield event
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

    @property
    def silence_s(self) -> float:
        """How long the connection may stay silent after the auth before it is taken for dead."""
        return self.heartbeat_s * SILENT_PERIODS

    def _check_auth(self, body: bytes) -> None:
        try:
            code = wire.auth_code(body)
        except wire.WireError as exc:
            raise BridgeError(f"bili room {self.room_id}: {exc}") from None
        if code != 0:
            raise BridgeError(
                f"bili room {self.room_id}: the server refused the auth (code {code}): check "
                "bridges.bili.uid and .key (getDanmuInfo's token for this room)",
                retry=False,
            )

    async def _beat(self, ws: ClientConnection) -> None:
        """A heartbeat now and every ``heartbeat_s``, until cancelled or the connection ends
        (the reading side then sees the close and reports it)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(wire.heartbeat_packet())
                await asyncio.sleep(self.heartbeat_s)

    def _skip(self, problem: str) -> None:
        self.skipped += 1
        self.last_problem = problem
        log.debug("bili room %s: skipped %s", self.room_id, problem)


__all__ = ["BilibiliAdapter"]
