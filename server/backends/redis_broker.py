"""The Broker on Redis pub/sub: one server, or sharded pub/sub on a Redis Cluster.

A room's channel is ``hudong:{room}:ch``; on a cluster it lives on the node that owns
the room's hash slot, next to the room's keys (``SSUBSCRIBE``/``SPUBLISH``). A relay
flush publishes and appends to the replay lists in one round trip (redis_relay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

from server.backends.base import BackendUnavailable, Broker, MessageHandler, Store
from server.backends.redis import as_text
from server.backends.redis_connection import RedisConnection
from server.backends.redis_relay import relay_flush

log = logging.getLogger("hudong.redis")
SUBSCRIBE_TIMEOUT_S = 5.0  # how long subscribe() waits for Redis to confirm


class _Listener:
    """One pub/sub connection and its reader task, for one Redis server.

    Reads block on that one connection, so a message is handled as soon as it
    arrives. Redis confirms each (s)subscribe on the same connection, in order with
    the messages, so a channel is live from the moment its confirmation is read:
    :meth:`add` returns then. When the connection breaks the listener waits with
    jittered exponential backoff, reconnects and subscribes to its channels again;
    the first confirmation on the new connection calls ``resubscribed``, so that what
    was published while it was away is re-read from the store.
    """

    def __init__(
        self,
        client: Any,
        sharded: bool,
        handler: Callable[[str, Any], None],
        name: str,
        timeout_s: float,
        resubscribed: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.resubscribed = resubscribed
        self.lost_since_confirmed = False  # a connection broke; nothing confirmed since
        self.sharded = sharded
        self.handler = handler
        self.name = name
        self.timeout_s = timeout_s
        self.channels: set[str] = set()  # wanted: subscribed again on every reconnect
        self.live: set[str] = set()  # confirmed on this connection
        self.healthy = False  # connected, the wanted channels asked for
        self.down = False  # the last connection broke or could not be made
        self.pubsub: Any = None
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._unsubscribing: Counter[str] = Counter()  # unsubscribes not yet confirmed
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"hudong-{name}")

    async def _subscribe(self, channels: list[str]) -> None:
        if self.sharded:
            await self.pubsub.ssubscribe(*channels)
        else:
            await self.pubsub.subscribe(*channels)

    async def add(self, channel: str) -> None:
        """Subscribe to ``channel``; return once Redis has confirmed it."""
        self.channels.add(channel)
        if channel in self.live:
            return
        if self.down:
            raise BackendUnavailable(f"redis pub/sub to {self.name} is down; retrying")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        try:
            if self.healthy:  # else the reader asks for it once connected
                with contextlib.suppress(Exception):  # the reader sees a broken connection
                    await self._subscribe([channel])
            await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            raise BackendUnavailable(
                f"redis pub/sub: {self.name} did not confirm {channel} in {self.timeout_s} s"
            ) from None
        finally:
            waiters = self._waiters.get(channel, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(channel, None)

    async def remove(self, channel: str) -> None:
        """Unsubscribe; nothing that arrives for ``channel`` afterwards is handled."""
        self.channels.discard(channel)
        self.live.discard(channel)
        if not self.healthy:
            return
        # A subscribe confirmation read before this one's is for a subscription it ends.
        self._unsubscribing[channel] += 1
        try:
            if self.sharded:
                await self.pubsub.sunsubscribe(channel)
            else:
                await self.pubsub.unsubscribe(channel)
        except Exception:  # the reader sees a broken connection; a new one starts clean
            self._unsubscribing[channel] -= 1

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = as_text(message["channel"])
        if kind in ("message", "smessage"):
            if channel in self.channels:
                try:
                    self.handler(channel, message["data"])
                except Exception:  # pragma: no cover - a bad message must not stop us
                    log.exception("broker message handler failed")
        elif kind in ("subscribe", "ssubscribe"):
            if self.lost_since_confirmed:  # from now on nothing published is missed
                self.lost_since_confirmed = False
                self.resubscribed()
            if channel in self.channels and not self._unsubscribing[channel]:
                self.live.add(channel)
                for waiter in self._waiters.get(channel, ()):
                    if not waiter.done():
                        waiter.set_result(None)
        elif kind in ("unsubscribe", "sunsubscribe") and self._unsubscribing[channel] > 0:
            self._unsubscribing[channel] -= 1

    def _lost(self) -> None:
        self.lost_since_confirmed = self.lost_since_confirmed or self.healthy
        self.healthy = False
        self.down = True
        self.live.clear()
        self._unsubscribing.clear()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(BackendUnavailable(f"redis pub/sub to {self.name} lost"))

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                self.pubsub = self.client.pubsub()
                asked = set(self.channels)
                # A subscription keeps the connection open even with no room yet.
                await self._subscribe([*asked] or [f"hudong-keepalive-{self.name}"])
                self.healthy, self.down = True, False
                delay = 0.1
                if late := self.channels - asked:  # added while we connected
                    await self._subscribe([*late])
                while True:
                    message = await self.pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("channel") is not None:
                        self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("redis pub/sub to %s lost (%s); reconnecting", self.name, exc)
                self._lost()
                with contextlib.suppress(Exception):
                    await self.pubsub.aclose()
                # full-jitter backoff, capped at 2 s so a returning Redis is used quickly
                await asyncio.sleep(delay * random.random() + 0.05)
                delay = min(2.0, delay * 2)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        self._lost()  # a subscribe still waiting gives up now
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()


class RedisBroker(Broker):
    """Room channels on Redis pub/sub; sharded pub/sub on a cluster.

    On one server, one listener serves every room. On a cluster, a room's channel
    lives on the node that owns its hash slot (``SSUBSCRIBE``), so there is one
    listener per node that owns a subscribed room, and a subscription is confirmed
    by that node.
    """

    def __init__(
        self, connection: RedisConnection, *, subscribe_timeout_s: float = SUBSCRIBE_TIMEOUT_S
    ) -> None:
        self.conn = connection
        self.subscribe_timeout_s = subscribe_timeout_s
        self.rooms: dict[str, _Listener] = {}
        self._listeners: dict[str, _Listener] = {}
        self._handler: MessageHandler | None = None
        self._prefix_len = len(connection.prefix) + 1

    @property
    def healthy(self) -> bool:
        return all(listener.healthy for listener in self._listeners.values())

    def channel(self, room_id: str) -> str:
        return self.conn.key(room_id, "ch")

    def _resubscribed(self) -> None:
        if self.on_resubscribed is not None:
            self.on_resubscribed()

    def _on_message(self, channel: str, data: Any) -> None:
        assert self._handler is not None
        self._handler(channel[self._prefix_len : channel.index("}", self._prefix_len)], data)

    def _listener(self, client: Any, sharded: bool, name: str) -> _Listener:
        listener = _Listener(
            client, sharded, self._on_message, name, self.subscribe_timeout_s, self._resubscribed
        )
        self._listeners[name] = listener
        return listener

    async def start(self, on_message: MessageHandler) -> None:
        self._handler = on_message
        if not self.conn.cluster:
            self._listener(self.conn.client, False, "redis")

    async def _listener_for(self, room_id: str) -> _Listener:
        if not self.conn.cluster:
            return self._listeners["redis"]
        client = self.conn.client
        await self.conn.call(lambda: client.initialize())
        node = client.get_node_from_key(self.channel(room_id))
        listener = self._listeners.get(node.name)
        if listener is None:
            node_client = aioredis.Redis(
                host=node.host, port=node.port, socket_connect_timeout=1.0, health_check_interval=5
            )
            listener = self._listener(node_client, True, node.name)
        return listener

    async def subscribe(self, room_id: str) -> None:
        listener = self.rooms.get(room_id)
        if listener is None:
            listener = self.rooms[room_id] = await self._listener_for(room_id)
        await listener.add(self.channel(room_id))

    async def unsubscribe(self, room_id: str) -> None:
        listener = self.rooms.pop(room_id, None)
        if listener is not None:
            await listener.remove(self.channel(room_id))

    async def publish(self, room_id: str, payload: bytes) -> None:
        await self.publish_many([(room_id, payload)])

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        if not items:
            return
        client = self.conn.client

        async def send() -> None:
            if len(items) == 1:
                room_id, payload = items[0]
                if self.conn.cluster:
                    await client.spublish(self.channel(room_id), payload)
                else:
                    await client.publish(self.channel(room_id), payload)
                return
            pipe = client.pipeline(transaction=False)
            for room_id, payload in items:
                if self.conn.cluster:
                    pipe.spublish(self.channel(room_id), payload)
                else:
                    pipe.publish(self.channel(room_id), payload)
            await pipe.execute()

        await self.conn.call(send)

    async def relay(
        self,
        items: list[tuple[str, bytes]],
        store: Store,
        replays: Mapping[str, list[dict[str, Any]]],
        keep: int,
    ) -> None:
        """One round trip for the whole flush when the store shares this connection."""
        if getattr(store, "conn", None) is self.conn:
            await relay_flush(self.conn, store, items, replays, keep)
        else:
            await super().relay(items, store, replays, keep)

    async def close(self) -> None:
        for listener in self._listeners.values():
            await listener.close()
            if listener.client is not self.conn.client:
                with contextlib.suppress(Exception):
                    await listener.client.aclose()
        self._listeners.clear()
