"""Store and Broker on Redis (redis-py's asyncio client), single server or Cluster.

URLs: ``redis://host:port/db`` (or ``rediss://``) for one server,
``redis+cluster://host:port`` for a Redis Cluster (any node as the seed).

Every key of a room carries the room id as a hash tag (``hudong:{room}:…``), so the
Lua scripts that make writes atomic touch one slot, and in a cluster the room's
pub/sub channel uses sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``) on the node that
owns that slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from server.backends.base import (
    ApplyResult,
    BackendUnavailable,
    MessageHandler,
    RoomExists,
    RoomNotFound,
    RoomRecord,
)

log = logging.getLogger("hudong.redis")
T = TypeVar("T")

DONE_TTL_S = 7 * 24 * 3600  # how long a retried command is still recognised

# The semantics of server.interactions.base.Tally, atomically.
# KEYS: records, counters, done, version, ids   ARGV: viewer, done-key, stored value
# ('' withdraws), deltas (JSON), caps (JSON), done ttl, interaction id, once ('1'/'0'),
# versioned ('1': the room version grows; '0': bookkeeping that is not room state)
APPLY = """
local done = redis.call('HGET', KEYS[3], ARGV[2])
if done then
  return {'duplicate', tonumber(done), redis.call('HGETALL', KEYS[2])}
end
local change = {}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and ARGV[8] == '1' then
  return {'already_done', tonumber(redis.call('GET', KEYS[4]) or '1'),
          redis.call('HGETALL', KEYS[2])}
end
if old then
  for name, amount in pairs(cjson.decode(old)['d']) do
    change[name] = (change[name] or 0) - amount
  end
end
for name, amount in pairs(cjson.decode(ARGV[4])) do
  change[name] = (change[name] or 0) + amount
end
for name, cap in pairs(cjson.decode(ARGV[5])) do
  local step = change[name] or 0
  if step > 0 and tonumber(redis.call('HGET', KEYS[2], name) or '0') + step > cap then
    return {'capped', tonumber(redis.call('GET', KEYS[4]) or '1'),
            redis.call('HGETALL', KEYS[2]), name}
  end
end
for name, step in pairs(change) do
  if step ~= 0 then
    if redis.call('HINCRBY', KEYS[2], name, step) == 0 then redis.call('HDEL', KEYS[2], name) end
  end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
redis.call('SADD', KEYS[5], ARGV[7])
local version
if ARGV[9] == '1' then
  version = redis.call('INCR', KEYS[4])
else
  version = tonumber(redis.call('GET', KEYS[4]) or '1')
end
redis.call('HSET', KEYS[3], ARGV[2], version)
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
return {'applied', version, redis.call('HGETALL', KEYS[2])}
"""

# KEYS: room hash, version   ARGV: title or '', settings JSON
UPDATE_ROOM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'title', ARGV[1]) end
local settings = cjson.decode(redis.call('HGET', KEYS[1], 'settings'))
for name, value in pairs(cjson.decode(ARGV[2])) do settings[name] = value end
redis.call('HSET', KEYS[1], 'settings', cjson.encode(settings))
return redis.call('INCR', KEYS[2])
"""

# KEYS: room hash, version, interactions   ARGV: interaction id, state JSON
PUT_INTERACTION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""

# KEYS: room hash, participants HyperLogLog   ARGV: user ids
# (only while the room exists: a node's late report must not bring a deleted room back)
ADD_PARTICIPANTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('PFADD', KEYS[2], unpack(ARGV))
"""
PARTICIPANTS_PER_CALL = 1000  # well under Lua's limit on unpack()


def _pairs(flat: list[Any]) -> dict[str, int]:
    return {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    try:
        yield
    except (TimeoutError, RedisError, OSError) as exc:
        if isinstance(exc, ResponseError) and "NOSCRIPT" not in str(exc):
            raise
        raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc


# Commands in flight per node: bounds the connections a burst of thousands of votes
# opens (redis-py's cluster client refuses past its pool size instead of waiting).
MAX_IN_FLIGHT = 48
_limits: dict[int, asyncio.Semaphore] = {}


class RedisConnection:
    """One redis-py client (single server or cluster) shared by the Store and the Broker."""

    def __init__(self, url: str, *, prefix: str = "hudong:") -> None:
        self.url = url
        self.prefix = prefix
        self.cluster = url.startswith("redis+cluster://")
        options: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 1.0}
        if self.cluster:
            self.client: Any = RedisCluster.from_url(
                "redis://" + url.removeprefix("redis+cluster://"),
                max_connections=MAX_IN_FLIGHT + 16,
                **options,
            )
        else:
            self.client = aioredis.Redis.from_url(url, health_check_interval=5, **options)
        self._initialized = not self.cluster
        self._initializing = asyncio.Lock()

    def key(self, room_id: str, name: str) -> str:
        return f"{self.prefix}{{{room_id}}}:{name}"

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one command, pipeline or script; Redis errors become BackendUnavailable."""
        loop_id = id(asyncio.get_running_loop())
        limit = _limits.get(loop_id)
        if limit is None:
            limit = _limits[loop_id] = asyncio.Semaphore(MAX_IN_FLIGHT)
        async with limit, _unavailable_on_error():
            if not self._initialized:
                await self._initialize()
            return await fn()

    async def _initialize(self) -> None:
        # A cluster client learns the topology once, before any concurrent use: when a
        # burst of commands is what initialises it, redis-py (8.1) sometimes fails a few
        # of them with "'NoneType' object has no attribute 'writelines'".
        async with self._initializing:
            if not self._initialized:
                await self.client.initialize()
                self._initialized = True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


class RedisStore:
    def __init__(self, connection: RedisConnection) -> None:
        self.conn = connection
        client = connection.client
        self._apply = client.register_script(APPLY)
        self._update_room = client.register_script(UPDATE_ROOM)
        self._put_interaction = client.register_script(PUT_INTERACTION)
        self._add_participants = client.register_script(ADD_PARTICIPANTS)

    def _k(self, room_id: str, name: str) -> str:
        return self.conn.key(room_id, name)

    async def create_room(self, room: RoomRecord) -> RoomRecord:
        c = self.conn.client
        key = self._k(room.id, "room")

        async def create() -> bool:
            created = await c.hsetnx(key, "id", room.id)
            if not created:
                return False
            await c.hset(
                key,
                mapping={
                    "title": room.title,
                    "created_at": repr(room.created_at),
                    "settings": orjson.dumps(room.settings).decode(),
                },
            )
            await c.set(self._k(room.id, "version"), room.version)
            await c.zadd(f"{self.conn.prefix}rooms", {room.id: room.created_at})
            return True

        if not await self.conn.call(create):
            raise RoomExists(room.id)
        return room

    async def get_room(self, room_id: str) -> RoomRecord:
        c = self.conn.client

        async def read() -> tuple[dict[Any, Any], Any]:
            return (
                await c.hgetall(self._k(room_id, "room")),
                await c.get(self._k(room_id, "version")),
            )

        fields, version = await self.conn.call(read)
        if not fields or b"title" not in fields:
            raise RoomNotFound(room_id)
        return RoomRecord(
            room_id,
            fields[b"title"].decode(),
            float(fields[b"created_at"]),
            int(version or 1),
            orjson.loads(fields[b"settings"]),
        )

    async def list_rooms(self) -> list[RoomRecord]:
        ids = await self.conn.call(
            lambda: self.conn.client.zrange(f"{self.conn.prefix}rooms", 0, -1)
        )
        rooms = []
        for raw in ids:
            with contextlib.suppress(RoomNotFound):
                rooms.append(await self.get_room(_text(raw)))
        return rooms

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord:
        version = await self.conn.call(
            lambda: self._update_room(
                keys=[self._k(room_id, "room"), self._k(room_id, "version")],
                args=[title or "", orjson.dumps(settings or {})],
            )
        )
        if version is None:
            raise RoomNotFound(room_id)
        return await self.get_room(room_id)

    async def delete_room(self, room_id: str) -> None:
        c = self.conn.client

        async def delete() -> int:
            ids = [_text(i) for i in await c.smembers(self._k(room_id, "ids"))]
            keys = [
                self._k(room_id, n)
                for n in (
                    "room",
                    "version",
                    "interactions",
                    "tokens",
                    "presence",
                    "stats",
                    "participants",
                    "replay",
                    "ids",
                )
            ]
            for iid in ids:
                keys += [self._k(room_id, f"i:{iid}:{n}") for n in ("rec", "cnt", "done")]
            await c.zrem(f"{self.conn.prefix}rooms", room_id)
            deleted: int = await c.delete(*keys)
            return deleted

        if not await self.conn.call(delete):
            raise RoomNotFound(room_id)

    async def room_version(self, room_id: str) -> int:
        value = await self.conn.call(lambda: self.conn.client.get(self._k(room_id, "version")))
        if value is None:
            raise RoomNotFound(room_id)
        return int(value)

    async def remember_token(
        self, room_id: str, token_hash: str, info: dict[str, Any], ttl_s: int
    ) -> None:
        value = orjson.dumps({**info, "_expires": time.time() + ttl_s})
        await self.conn.call(
            lambda: self.conn.client.hset(self._k(room_id, "tokens"), token_hash, value)
        )

    async def token_info(self, room_id: str, token_hash: str) -> dict[str, Any] | None:
        raw = await self.conn.call(
            lambda: self.conn.client.hget(self._k(room_id, "tokens"), token_hash)
        )
        if raw is None:
            return None
        info: dict[str, Any] = orjson.loads(raw)
        if info.pop("_expires", 0) < time.time():
            return None
        return info

    async def put_interaction(
        self, room_id: str, interaction_id: str, state: dict[str, Any]
    ) -> int:
        version = await self.conn.call(
            lambda: self._put_interaction(
                keys=[
                    self._k(room_id, "room"),
                    self._k(room_id, "version"),
                    self._k(room_id, "interactions"),
                ],
                args=[interaction_id, orjson.dumps(state)],
            )
        )
        if version is None:
            raise RoomNotFound(room_id)
        return int(version)

    async def interactions(self, room_id: str) -> dict[str, dict[str, Any]]:
        raw = await self.conn.call(
            lambda: self.conn.client.hgetall(self._k(room_id, "interactions"))
        )
        return {_text(k): orjson.loads(v) for k, v in raw.items()}

    async def apply(
        self,
        room_id: str,
        interaction_id: str,
        viewer_id: str,
        key: str,
        record: dict[str, Any] | None,
        deltas: dict[str, int],
        caps: dict[str, int] | None = None,
        once: bool = False,
        versioned: bool = True,
    ) -> ApplyResult:
        base = f"i:{interaction_id}"
        stored = b"" if record is None else orjson.dumps({"r": record, "d": deltas})
        result = await self.conn.call(
            lambda: self._apply(
                keys=[
                    self._k(room_id, f"{base}:rec"),
                    self._k(room_id, f"{base}:cnt"),
                    self._k(room_id, f"{base}:done"),
                    self._k(room_id, "version"),
                    self._k(room_id, "ids"),
                ],
                args=[
                    viewer_id,
                    f"{viewer_id}|{key}",
                    stored,
                    orjson.dumps(deltas),
                    orjson.dumps(caps or {}),
                    DONE_TTL_S,
                    interaction_id,
                    "1" if once else "0",
                    "1" if versioned else "0",
                ],
            )
        )
        status = _text(result[0])
        counters = _pairs(result[2])
        capped = _text(result[3]) if status == "capped" else None
        return ApplyResult(status, int(result[1]), counters, capped)  # type: ignore[arg-type]

    async def counters(self, room_id: str, interaction_id: str) -> dict[str, int]:
        raw = await self.conn.call(
            lambda: self.conn.client.hgetall(self._k(room_id, f"i:{interaction_id}:cnt"))
        )
        return {_text(k): int(v) for k, v in raw.items()}

    async def records(self, room_id: str, interaction_id: str) -> dict[str, dict[str, Any]]:
        raw = await self.conn.call(
            lambda: self.conn.client.hgetall(self._k(room_id, f"i:{interaction_id}:rec"))
        )
        return {_text(k): orjson.loads(v)["r"] for k, v in raw.items()}

    async def set_presence(self, room_id: str, node_id: str, count: int, ttl_s: float) -> None:
        expires = int((time.time() + ttl_s) * 1000)
        await self.conn.call(
            lambda: self.conn.client.hset(
                self._k(room_id, "presence"), node_id, f"{count}:{expires}"
            )
        )

    async def presence(self, room_id: str) -> int:
        key = self._k(room_id, "presence")
        raw = await self.conn.call(lambda: self.conn.client.hgetall(key))
        now = time.time() * 1000
        total = 0
        stale = []
        for node, value in raw.items():
            count, _, expires = _text(value).partition(":")
            if int(expires) > now:
                total += int(count)
            else:
                stale.append(node)
        if stale:
            with contextlib.suppress(BackendUnavailable):
                await self.conn.call(lambda: self.conn.client.hdel(key, *stale))
        return total

    async def set_node_stats(
        self, room_id: str, node_id: str, stats: dict[str, int], ttl_s: float
    ) -> None:
        value = orjson.dumps({"s": stats, "e": int((time.time() + ttl_s) * 1000)})
        await self.conn.call(
            lambda: self.conn.client.hset(self._k(room_id, "stats"), node_id, value)
        )

    async def room_stats(self, room_id: str) -> dict[str, int]:
        key = self._k(room_id, "stats")
        raw = await self.conn.call(lambda: self.conn.client.hgetall(key))
        now = time.time() * 1000
        total: dict[str, int] = {}
        stale = []
        for node, value in raw.items():
            entry = orjson.loads(value)
            if entry["e"] <= now:
                stale.append(node)
                continue
            for name, count in entry["s"].items():
                total[name] = total.get(name, 0) + int(count)
        if stale:
            with contextlib.suppress(BackendUnavailable):
                await self.conn.call(lambda: self.conn.client.hdel(key, *stale))
        return total

    async def add_participants(self, room_id: str, user_ids: Collection[str]) -> None:
        keys = [self._k(room_id, "room"), self._k(room_id, "participants")]
        ids = list(user_ids)
        for start in range(0, len(ids), PARTICIPANTS_PER_CALL):
            chunk = ids[start : start + PARTICIPANTS_PER_CALL]

            async def add(chunk: list[str] = chunk) -> None:
                await self._add_participants(keys=keys, args=chunk)

            await self.conn.call(add)

    async def participants(self, room_id: str) -> int:
        key = self._k(room_id, "participants")
        count: int = await self.conn.call(lambda: self.conn.client.pfcount(key))
        return count

    async def append_replay(self, room_id: str, events: list[dict[str, Any]], keep: int) -> None:
        if not events:
            return
        key = self._k(room_id, "replay")

        async def append() -> None:
            pipe = self.conn.client.pipeline(transaction=False)
            pipe.rpush(key, *(orjson.dumps(e) for e in events))
            pipe.ltrim(key, -keep, -1)
            await pipe.execute()

        await self.conn.call(append)

    async def replay(self, room_id: str, count: int) -> list[dict[str, Any]]:
        if count <= 0:
            return []
        raw = await self.conn.call(
            lambda: self.conn.client.lrange(self._k(room_id, "replay"), -count, -1)
        )
        return [orjson.loads(e) for e in raw]

    async def ping(self) -> None:
        await self.conn.call(lambda: self.conn.client.ping())

    async def close(self) -> None:
        await self.conn.close()


class _Listener:
    """One pub/sub connection and its reader task, for one Redis server.

    Reads block on that one connection, so a message is handled as soon as it
    arrives. When the connection breaks the listener waits with jittered
    exponential backoff, reconnects and subscribes to its channels again.
    """

    def __init__(
        self, client: Any, sharded: bool, handler: Callable[[Any, Any], None], name: str
    ) -> None:
        self.client = client
        self.sharded = sharded
        self.handler = handler
        self.name = name
        self.channels: set[str] = set()
        self.healthy = False
        self.pubsub: Any = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"hudong-{name}")

    async def _subscribe(self, channels: list[str]) -> None:
        if self.sharded:
            await self.pubsub.ssubscribe(*channels)
        else:
            await self.pubsub.subscribe(*channels)

    async def add(self, channel: str) -> None:
        self.channels.add(channel)
        if self.healthy:
            with contextlib.suppress(Exception):  # else subscribed again on reconnect
                await self._subscribe([channel])

    async def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        if self.healthy:
            with contextlib.suppress(Exception):
                if self.sharded:
                    await self.pubsub.sunsubscribe(channel)
                else:
                    await self.pubsub.unsubscribe(channel)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                # A subscription keeps the connection open even with no room yet.
                await self._subscribe([*self.channels] or [f"hudong-keepalive-{self.name}"])
                self.healthy = True
                delay = 0.1
                while True:
                    message = await self.pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=1.0
                    )
                    if message is None or message.get("type") not in ("message", "smessage"):
                        continue
                    try:
                        self.handler(message["channel"], message["data"])
                    except Exception:  # pragma: no cover - a bad message must not stop us
                        log.exception("broker message handler failed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    log.warning("redis pub/sub to %s lost (%s); reconnecting", self.name, exc)
                self.healthy = False
                with contextlib.suppress(Exception):
                    await self.pubsub.aclose()
                # full-jitter backoff, capped at 2 s so a returning Redis is used quickly
                await asyncio.sleep(delay * random.random() + 0.05)
                delay = min(2.0, delay * 2)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()


class RedisBroker:
    """Room channels on Redis pub/sub; sharded pub/sub on a cluster.

    On one server, one listener serves every room. On a cluster, a room's channel
    lives on the node that owns its hash slot (``SSUBSCRIBE``), so there is one
    listener per node that owns a subscribed room.
    """

    def __init__(self, connection: RedisConnection) -> None:
        self.conn = connection
        self.rooms: dict[str, _Listener] = {}
        self._listeners: dict[str, _Listener] = {}
        self._handler: MessageHandler | None = None
        self._prefix_len = len(connection.prefix) + 1

    @property
    def healthy(self) -> bool:
        return all(listener.healthy for listener in self._listeners.values())

    def channel(self, room_id: str) -> str:
        return self.conn.key(room_id, "ch")

    def _on_message(self, channel: Any, data: Any) -> None:
        name = _text(channel)
        assert self._handler is not None
        self._handler(name[self._prefix_len : name.index("}", self._prefix_len)], data)

    async def start(self, on_message: MessageHandler) -> None:
        self._handler = on_message
        if not self.conn.cluster:
            self._listeners["redis"] = _Listener(self.conn.client, False, self._on_message, "redis")

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
            listener = _Listener(node_client, True, self._on_message, node.name)
            self._listeners[node.name] = listener
        return listener

    async def subscribe(self, room_id: str) -> None:
        if room_id in self.rooms:
            return
        listener = await self._listener_for(room_id)
        self.rooms[room_id] = listener
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

    async def close(self) -> None:
        for listener in self._listeners.values():
            await listener.close()
            if listener.client is not self.conn.client:
                with contextlib.suppress(Exception):
                    await listener.client.aclose()
        self._listeners.clear()
