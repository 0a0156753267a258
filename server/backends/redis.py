"""The Store on Redis (redis-py's asyncio client), single server or Cluster; the
Broker is in redis_broker.py and shares the connection.

URLs: ``redis://host:port/db`` (or ``rediss://``) for one server,
``redis+cluster://host:port`` for a Redis Cluster (any node as the seed).

Every key of a room carries the room id as a hash tag (``hudong:{room}:…``), so the
Lua scripts that make writes atomic touch one slot, and in a cluster the room's
pub/sub channel uses sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``) on the node that
owns that slot.

A room exists while its hash (``{room}:room``) has a title. Every script that writes
to a room checks that first, in the same script, so a write to a missing room changes
nothing and leaves no key behind; every read of a room is one script that checks it
in the same round trip. Creating a room is one script (every key of the room, or
none) and so is deleting one (it reads the room's box ids and deletes every key).

The index of rooms (``hudong:rooms``, a sorted set by creation time) lives in another
slot, so it cannot be in those scripts. Its order: ``create_room`` writes the room,
then indexes it; ``delete_room`` deletes the room, then unindexes it, then indexes it
again if a concurrent create has made it anew in between. So a room that exists is
indexed once its create has returned, and what a failure between the steps (Redis
unreachable) leaves is an indexed id without a room, which ``list_rooms`` skips, or
a room whose create raised before indexing it, which a retried create (answered with
``RoomExists``) indexes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Sequence
from functools import partial
from typing import Any, TypeVar

import orjson

from server.backends.base import (
    TOKENS_KEPT,
    ApplyResult,
    BackendUnavailable,
    BoxData,
    RoomExists,
    RoomNotFound,
    RoomRecord,
    Store,
    Submission,
    held_record,
)
from server.backends.redis_audit import REDACT, RedisAuditLog
from server.backends.redis_batch import SUBMIT_MANY, submit_many_call, submit_many_results
from server.backends.redis_connection import RedisConnection
from server.backends.redis_tokens import REMEMBER_TOKEN
from server.backends.redis_viewers import PRUNE, VIEWER, Call, prune_call, viewer_call
from server.backends.retention import Cutoffs
from server.backends.viewers import ViewerData

T = TypeVar("T")

DONE_TTL_S = 7 * 24 * 3600  # how long a retried command is still recognised

# The keys of a room, after the prefix and hash tag: the room's own keys (the hash
# first, the set of box ids last) and, per box id, the box's keys ``i:{id}:{part}``.
ROOM_KEYS = (
    "room version interactions tokens token_expiry presence stats participants viewers replay audit"
    " ids"
).split()
BOX_KEYS = ("rec", "cnt", "done")

# --- Lua: KEYS[1] is always the room's hash -------------------------------------------

# Every script that touches a room starts with this: a missing room is a nil answer.
IF_ROOM = "if redis.call('HEXISTS', KEYS[1], 'title') == 0 then return false end\n"

# Deletes every key of a room. KEYS: the room's own keys (ROOM_KEYS, the id set
# last); ARGV[1]: the room's key prefix, ARGV[2..4]: BOX_KEYS.
DROP_ROOM = """
for _, id in ipairs(redis.call('SMEMBERS', KEYS[#KEYS])) do
  for part = 2, 4 do redis.call('DEL', ARGV[1] .. 'i:' .. id .. ':' .. ARGV[part]) end
end
redis.call('DEL', unpack(KEYS))
"""

# KEYS: as DROP_ROOM   ARGV: as DROP_ROOM, then id, title, created_at, settings JSON,
# version. Answers {1}, or {0, created_at} when the room exists. Whatever an older
# version left of a missing room (it could write without checking) is dropped first.
CREATE_ROOM = f"""
if redis.call('HEXISTS', KEYS[1], 'title') == 1 then
  return {{0, redis.call('HGET', KEYS[1], 'created_at')}}
end
{DROP_ROOM}
redis.call('HSET', KEYS[1], 'id', ARGV[5], 'title', ARGV[6], 'created_at', ARGV[7],
           'settings', ARGV[8])
redis.call('SET', KEYS[2], ARGV[9])
return {{1}}
"""

DELETE_ROOM = IF_ROOM + DROP_ROOM + "return 1\n"

# KEYS: room, version   ARGV: changes JSON ({"title"?: …, "settings": {…}})
# Answers {version, the room hash's fields}.
UPDATE_ROOM = (
    IF_ROOM
    + """
local changes = cjson.decode(ARGV[1])
if changes['title'] then redis.call('HSET', KEYS[1], 'title', changes['title']) end
local settings = cjson.decode(redis.call('HGET', KEYS[1], 'settings'))
for name, value in pairs(changes['settings']) do settings[name] = value end
redis.call('HSET', KEYS[1], 'settings', cjson.encode(settings))
return {redis.call('INCR', KEYS[2]), redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: room, version, interactions   ARGV: interaction id, state JSON
PUT_INTERACTION = (
    IF_ROOM
    + """
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""
)


# KEYS: room, a hash   ARGV: field, value (tokens, presence and node stats)
SET_FIELD = IF_ROOM + "return redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"

# KEYS: room, participants (or viewers) HyperLogLog   ARGV: user ids
ADD_PARTICIPANTS = IF_ROOM + "return redis.call('PFADD', KEYS[2], unpack(ARGV))\n"
PARTICIPANTS_PER_CALL = 1000  # well under Lua's limit on unpack()
PRESENCE_PER_CALL = 500  # rooms whose presence one pipeline reads

# KEYS: room, replay (or audit) list   ARGV: how many to keep, events (at most that many)
APPEND_REPLAY = (
    IF_ROOM
    + """
local keep = tonumber(ARGV[1])
if keep <= 0 then return redis.call('DEL', KEYS[2]) end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
return redis.call('LTRIM', KEYS[2], -keep, -1)
"""
)

# Reads of one room as of one moment. KEYS: room, then one key per read; ARGV: per
# read, its command (GET, HGETALL, LRANGE (a whole list), or HGET, the one that takes
# an argument: the field) and that argument ('' for the others).
READ = (
    IF_ROOM
    + """
local answers = {}
for i = 2, #KEYS do
  local command, field = ARGV[2 * i - 3], ARGV[2 * i - 2]
  if command == 'HGET' then
    answers[i - 1] = redis.call(command, KEYS[i], field)
  elseif command == 'LRANGE' then
    answers[i - 1] = redis.call(command, KEYS[i], 0, -1)
  else
    answers[i - 1] = redis.call(command, KEYS[i])
  end
end
return answers
"""
)


def as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[str, Any]:
    """A hash as HGETALL answers a script: [field, value, field, value, …]."""
    return {as_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _counters(flat: Sequence[Any]) -> dict[str, int]:
    return {name: int(value) for name, value in _fields(flat).items()}


def _records(flat: Sequence[Any]) -> dict[str, dict[str, Any]]:
    return {viewer: held_record(held) for viewer, held in _fields(flat).items()}


def _room_record(room_id: str, fields: dict[str, Any], version: Any) -> RoomRecord:
    return RoomRecord(
        room_id,
        as_text(fields["title"]),
        float(fields["created_at"]),
        int(version or 1),
        orjson.loads(fields["settings"]),
    )


class RedisStore(RedisAuditLog, Store):
    """The Store on Redis (one server or a cluster): every write one Lua script."""

    def __init__(self, connection: RedisConnection) -> None:
        self.conn = connection
        client = connection.client
        self._create_room = client.register_script(CREATE_ROOM)
        self._delete_room = client.register_script(DELETE_ROOM)
        self._update_room = client.register_script(UPDATE_ROOM)
        self._put_interaction = client.register_script(PUT_INTERACTION)
        self._submit_many = client.register_script(IF_ROOM + SUBMIT_MANY)
        self._set_field = client.register_script(SET_FIELD)
        self._remember_token = client.register_script(REMEMBER_TOKEN)
        self._add_participants = client.register_script(ADD_PARTICIPANTS)
        self._append_replay = client.register_script(APPEND_REPLAY)
        self._read_room = client.register_script(READ)
        self._redact_audit = client.register_script(REDACT)
        self._viewer = client.register_script(VIEWER)
        self._prune = client.register_script(PRUNE)

    def _k(self, room_id: str, name: str) -> str:
        return self.conn.key(room_id, name)

    @property
    def _index(self) -> str:
        return f"{self.conn.prefix}rooms"

    async def _script(
        self, script: Any, room_id: str, names: Sequence[str], args: list[Any]
    ) -> Any:
        """Run a script on the room's hash and the keys ``names``; None: no such room."""
        keys = [self._k(room_id, "room"), *(self._k(room_id, name) for name in names)]
        return await self.conn.call(lambda: script(keys=keys, args=args))

    async def _read(self, room_id: str, *reads: tuple[str, str, str]) -> list[Any]:
        """Reads ``(command, key name, field for HGET or '')`` of one room, in one
        atomic round trip; RoomNotFound when the room does not exist."""
        names = [name for _, name, _ in reads]
        args = [part for command, _, argument in reads for part in (command, argument)]
        answers = await self._script(self._read_room, room_id, names, args)
        if answers is None:
            raise RoomNotFound(room_id)
        return list(answers)

    def _drop_args(self, room_id: str) -> list[str]:
        return [self._k(room_id, ""), *BOX_KEYS]

    async def create_room(self, room: RoomRecord) -> RoomRecord:
        settings = orjson.dumps(room.settings)
        args = [room.id, room.title, repr(room.created_at), settings, room.version]
        answer = await self._script(
            self._create_room, room.id, ROOM_KEYS[1:], [*self._drop_args(room.id), *args]
        )
        client = self.conn.client
        if answer[0]:
            await self.conn.call(lambda: client.zadd(self._index, {room.id: room.created_at}))
            return room
        # The room is there: index it in case the create that made it failed before that.
        created_at = float(answer[1])
        await self.conn.call(lambda: client.zadd(self._index, {room.id: created_at}, nx=True))
        raise RoomExists(room.id)

    async def get_room(self, room_id: str) -> RoomRecord:
        fields, version = await self._read(room_id, ("HGETALL", "room", ""), ("GET", "version", ""))
        return _room_record(room_id, _fields(fields), version)

    async def list_rooms(self) -> list[RoomRecord]:
        ids = await self.conn.call(lambda: self.conn.client.zrange(self._index, 0, -1))
        rooms = []
        for raw in ids:
            with contextlib.suppress(RoomNotFound):  # deleted since it was indexed
                rooms.append(await self.get_room(as_text(raw)))
        return rooms

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord:
        changes: dict[str, Any] = {"settings": settings or {}}
        if title is not None:
            changes["title"] = title
        answer = await self._script(
            self._update_room, room_id, ["version"], [orjson.dumps(changes)]
        )
        if answer is None:
            raise RoomNotFound(room_id)
        return _room_record(room_id, _fields(answer[1]), answer[0])

    async def delete_room(self, room_id: str) -> None:
        client = self.conn.client
        deleted = await self._script(
            self._delete_room, room_id, ROOM_KEYS[1:], self._drop_args(room_id)
        )
        if deleted is None:
            raise RoomNotFound(room_id)
        await self.conn.call(lambda: client.zrem(self._index, room_id))
        # A create that ran between our script and that ZREM lost its index entry.
        created_at = await self.conn.call(
            lambda: client.hget(self._k(room_id, "room"), "created_at")
        )
        if created_at is not None:
            await self.conn.call(lambda: client.zadd(self._index, {room_id: float(created_at)}))

    async def room_version(self, room_id: str) -> int:
        [version] = await self._read(room_id, ("GET", "version", ""))
        return int(version or 1)

    async def room_count(self) -> int:
        return int(await self.conn.call(lambda: self.conn.client.zcard(self._index)))

    async def remember_token(
        self,
        room_id: str,
        token_hash: str,
        info: dict[str, Any],
        ttl_s: int,
        keep: int = TOKENS_KEPT,
    ) -> None:
        now = time.time()
        value = orjson.dumps({**info, "_expires": now + ttl_s})
        args = [token_hash, value, repr(now + ttl_s), repr(now), keep]
        names = ["tokens", "token_expiry"]
        if await self._script(self._remember_token, room_id, names, args) is None:
            raise RoomNotFound(room_id)

    async def token_info(self, room_id: str, token_hash: str) -> dict[str, Any] | None:
        [raw] = await self._read(room_id, ("HGET", "tokens", token_hash))
        if raw is None:
            return None
        info: dict[str, Any] = orjson.loads(raw)
        if info.pop("_expires", 0) < time.time():
            return None
        return info

    async def put_interaction(
        self, room_id: str, interaction_id: str, state: dict[str, Any]
    ) -> int:
        version = await self._script(
            self._put_interaction,
            room_id,
            ["version", "interactions"],
            [interaction_id, orjson.dumps(state)],
        )
        if version is None:
            raise RoomNotFound(room_id)
        return int(version)

    async def interactions(self, room_id: str) -> dict[str, dict[str, Any]]:
        [raw] = await self._read(room_id, ("HGETALL", "interactions", ""))
        return {name: orjson.loads(state) for name, state in _fields(raw).items()}

    async def submit(
        self, room_id: str, interaction_id: str, submission: Submission
    ) -> ApplyResult:
        # A batch of one: the same script, so one and many cannot apply differently.
        [result] = await self.submit_many(room_id, [(interaction_id, submission)])
        return result

    async def submit_many(
        self, room_id: str, items: list[tuple[str, Submission]]
    ) -> list[ApplyResult]:
        if not items:
            return []
        names, args = submit_many_call(items, DONE_TTL_S)
        answer = await self._script(self._submit_many, room_id, names, args)
        if answer is None:
            raise RoomNotFound(room_id)
        return submit_many_results(items, answer)

    async def counters(self, room_id: str, interaction_id: str) -> dict[str, int]:
        return (await self.read(room_id, [interaction_id], ())).counters[interaction_id]

    async def records(self, room_id: str, interaction_id: str) -> dict[str, dict[str, Any]]:
        return (await self.read(room_id, (), [interaction_id])).records[interaction_id]

    async def read(
        self,
        room_id: str,
        counters: Collection[str],
        records: Collection[str],
        held: Collection[tuple[str, str]] = (),
    ) -> BoxData:
        counted, whole, single = list(counters), list(records), list(held)
        answers = await self._read(
            room_id,
            *(("HGETALL", f"i:{box}:cnt", "") for box in counted),
            *(("HGETALL", f"i:{box}:rec", "") for box in whole),
            *(("HGET", f"i:{box}:rec", holder) for box, holder in single),
        )
        n, m = len(counted), len(counted) + len(whole)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for (box, holder), raw in zip(single, answers[m:], strict=True):
            if raw:
                found.setdefault(box, {})[holder] = held_record(raw)
        return BoxData(
            {box: _counters(flat) for box, flat in zip(counted, answers[:n], strict=True)},
            {box: _records(flat) for box, flat in zip(whole, answers[n:m], strict=True)},
            found,
        )

    async def set_presence(self, room_id: str, node_id: str, count: int, ttl_s: float) -> None:
        expires = int((time.time() + ttl_s) * 1000)
        await self._script(self._set_field, room_id, ["presence"], [node_id, f"{count}:{expires}"])

    async def presence(self, room_id: str) -> int:
        return (await self.presence_many([room_id]))[room_id]

    async def presence_many(self, room_ids: Collection[str]) -> dict[str, int]:
        """Every room's presence hash in one pipeline per PRESENCE_PER_CALL rooms; the
        counts past their expiry are left out, and removed."""
        ids = list(room_ids)
        totals: dict[str, int] = {}
        stale: dict[str, list[Any]] = {}
        for start in range(0, len(ids), PRESENCE_PER_CALL):
            chunk = ids[start : start + PRESENCE_PER_CALL]
            keys = [self._k(room_id, "presence") for room_id in chunk]
            hashes = await self.conn.call(partial(self._hgetall_all, keys))
            now = time.time() * 1000
            for key, room_id, raw in zip(keys, chunk, hashes, strict=True):
                totals[room_id] = 0
                for node, value in raw.items():
                    count, _, expires = as_text(value).partition(":")
                    if int(expires) > now:
                        totals[room_id] += int(count)
                    else:
                        stale.setdefault(key, []).append(node)
        for key, nodes in stale.items():
            with contextlib.suppress(BackendUnavailable):
                await self.conn.call(partial(self.conn.client.hdel, key, *nodes))
        return totals

    async def _hgetall_all(self, keys: list[str]) -> list[Any]:
        pipe = self.conn.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        answers: list[Any] = await pipe.execute()
        return answers

    async def set_node_stats(
        self, room_id: str, node_id: str, stats: dict[str, int], ttl_s: float
    ) -> None:
        value = orjson.dumps({"s": stats, "e": int((time.time() + ttl_s) * 1000)})
        await self._script(self._set_field, room_id, ["stats"], [node_id, value])

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
        await self._add_distinct(room_id, "participants", user_ids)

    async def participants(self, room_id: str) -> int:
        return await self._distinct(room_id, "participants")

    async def add_viewers(self, room_id: str, user_ids: Collection[str]) -> None:
        await self._add_distinct(room_id, "viewers", user_ids)

    async def unique_viewers(self, room_id: str) -> int:
        return await self._distinct(room_id, "viewers")

    async def _add_distinct(self, room_id: str, name: str, user_ids: Collection[str]) -> None:
        """Add to a HyperLogLog of the room (``participants`` or ``viewers``)."""
        ids = list(user_ids)
        for start in range(0, len(ids), PARTICIPANTS_PER_CALL):
            chunk = ids[start : start + PARTICIPANTS_PER_CALL]
            await self._script(self._add_participants, room_id, [name], chunk)

    async def _distinct(self, room_id: str, name: str) -> int:
        key = self._k(room_id, name)
        count: int = await self.conn.call(lambda: self.conn.client.pfcount(key))
        return count

    async def append_replay(self, room_id: str, events: list[dict[str, Any]], keep: int) -> None:
        if not events:
            return
        kept = [orjson.dumps(e) for e in events[-keep:]] if keep > 0 else []
        await self._script(self._append_replay, room_id, ["replay"], [keep, *kept])

    async def replay(self, room_id: str, count: int) -> list[dict[str, Any]]:
        if count <= 0:
            return []
        raw = await self.conn.call(
            lambda: self.conn.client.lrange(self._k(room_id, "replay"), -count, -1)
        )
        return [orjson.loads(e) for e in raw]

    async def viewer_data(self, room_id: str, viewer_id: str) -> ViewerData:
        return (await self._call(self._viewer, room_id, viewer_call(viewer_id, False)))[0]

    async def erase_viewer(self, room_id: str, viewer_id: str) -> tuple[ViewerData, int]:
        return await self._call(self._viewer, room_id, viewer_call(viewer_id, True))

    async def prune(self, room_id: str, cutoffs: Cutoffs, now: float) -> tuple[int, int]:
        return await self._call(self._prune, room_id, prune_call(cutoffs, now))

    async def _call(self, script: Any, room_id: str, call: Call[T]) -> T:
        """A script of redis_viewers.py (keys, arguments, reading of the answer)."""
        names, args, result = call
        answer = await self._script(script, room_id, names, [self._k(room_id, ""), *args])
        if answer is None:
            raise RoomNotFound(room_id)
        return result(answer)

    async def ping(self) -> None:
        await self.conn.call(lambda: self.conn.client.ping())

    async def close(self) -> None:
        await self.conn.close()
