"""The embedded default: Store and Broker in this process's memory.

Semantics match the Redis implementations exactly (the contract suite checks it);
values are stored as JSON bytes so that what comes back is a copy, as from Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import defaultdict, deque
from collections.abc import Collection
from typing import Any

import orjson

from server.backends.base import (
    TOKENS_KEPT,
    ApplyResult,
    BoxData,
    Broker,
    MessageHandler,
    RoomExists,
    RoomNotFound,
    RoomRecord,
    Store,
    Submission,
    held_deltas,
    held_record,
)
from server.backends.retention import KEPT_BOXES, Cutoffs, stale_event, stale_record
from server.backends.viewers import (
    ViewerData,
    holds,
    keyed_by,
    scrubbed,
    sent_by,
    token_of,
    tombstone,
)


def audit_value(text: str) -> bytes:
    """``text`` as a JSON string, as it stands in a stored audit entry."""
    return orjson.dumps(text)


@dataclasses.dataclass
class _Interaction:
    """One box: the records held, their counters, the keys applied."""

    records: dict[str, bytes] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    done: dict[str, int] = dataclasses.field(default_factory=dict)  # "viewer|key" -> version
    written: float = dataclasses.field(default_factory=time.time)  # its last applied write


@dataclasses.dataclass
class _Room:
    """One room and everything the store keeps of it."""

    record: RoomRecord
    version: int = 1
    interactions: dict[str, bytes] = dataclasses.field(default_factory=dict)
    contributions: dict[str, _Interaction] = dataclasses.field(
        default_factory=lambda: defaultdict(_Interaction)
    )
    tokens: dict[str, tuple[bytes, float]] = dataclasses.field(default_factory=dict)
    presence: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)
    stats: dict[str, tuple[dict[str, int], float]] = dataclasses.field(default_factory=dict)
    # who took part -> when last counted; past the personal retention an id is
    # forgotten and only counted (server/backends/retention.py)
    participants: dict[str, float] = dataclasses.field(default_factory=dict)
    forgotten: int = 0
    # who joined as a viewer, kept and forgotten as the participants are
    viewers: dict[str, float] = dataclasses.field(default_factory=dict)
    viewers_forgotten: int = 0
    replay: deque[bytes] = dataclasses.field(default_factory=deque)
    audit: deque[bytes] = dataclasses.field(default_factory=deque)


class MemoryStore(Store):
    """Rooms in a dict; each method runs without awaiting, so each is atomic."""

    def __init__(self) -> None:
        self._rooms: dict[str, _Room] = {}

    def _room(self, room_id: str) -> _Room:
        try:
            return self._rooms[room_id]
        except KeyError:
            raise RoomNotFound(room_id) from None

    def _bump(self, room: _Room) -> int:
        room.version += 1
        return room.version

    async def create_room(self, room: RoomRecord) -> RoomRecord:
        if room.id in self._rooms:
            raise RoomExists(room.id)
        self._rooms[room.id] = _Room(room, room.version)
        return room

    async def get_room(self, room_id: str) -> RoomRecord:
        room = self._room(room_id)
        return dataclasses.replace(room.record, version=room.version)

    async def list_rooms(self) -> list[RoomRecord]:
        rooms = [await self.get_room(r) for r in self._rooms]
        return sorted(rooms, key=lambda r: (r.created_at, r.id))

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord:
        room = self._room(room_id)
        version = self._bump(room)
        room.record = dataclasses.replace(
            room.record,
            title=room.record.title if title is None else title,
            settings={**room.record.settings, **(settings or {})},
            version=version,
        )
        return room.record

    async def delete_room(self, room_id: str) -> None:
        if self._rooms.pop(room_id, None) is None:
            raise RoomNotFound(room_id)

    async def room_version(self, room_id: str) -> int:
        return self._room(room_id).version

    async def room_count(self) -> int:
        return len(self._rooms)

    async def remember_token(
        self,
        room_id: str,
        token_hash: str,
        info: dict[str, Any],
        ttl_s: int,
        keep: int = TOKENS_KEPT,
    ) -> None:
        self._remember_token(room_id, token_hash, info, ttl_s, keep)

    def _remember_token(
        self, room_id: str, token_hash: str, info: dict[str, Any], ttl_s: int, keep: int
    ) -> list[str]:
        """Keep the record; forget the expired ones and, past ``keep``, those that expire
        first. Answers the hashes forgotten."""
        tokens = self._room(room_id).tokens
        now = time.time()
        tokens[token_hash] = (orjson.dumps(info), now + ttl_s)
        gone = [h for h, (_, expires) in tokens.items() if expires < now]
        if len(tokens) - len(gone) > keep:
            alive = sorted((e, h) for h, (_, e) in tokens.items() if e >= now)
            gone += [h for _, h in alive[: len(alive) - keep]]
        for h in gone:
            del tokens[h]
        return gone

    async def token_info(self, room_id: str, token_hash: str) -> dict[str, Any] | None:
        entry = self._room(room_id).tokens.get(token_hash)
        if entry is None or entry[1] < time.time():
            return None
        info: dict[str, Any] = orjson.loads(entry[0])
        return info

    async def put_interaction(
        self, room_id: str, interaction_id: str, state: dict[str, Any]
    ) -> int:
        room = self._room(room_id)
        room.interactions[interaction_id] = orjson.dumps(state)
        return self._bump(room)

    async def interactions(self, room_id: str) -> dict[str, dict[str, Any]]:
        room = self._room(room_id)
        return {k: orjson.loads(v) for k, v in room.interactions.items()}

    async def submit(
        self, room_id: str, interaction_id: str, submission: Submission
    ) -> ApplyResult:
        room = self._room(room_id)
        state = room.contributions[interaction_id]
        done = state.done.get(submission.done_key) if submission.keyed else None
        if done is not None:
            return ApplyResult("duplicate", done, dict(state.counters))
        old = state.records.get(submission.viewer_id)
        if submission.once and old is not None:
            return ApplyResult("already_done", room.version, dict(state.counters))
        if submission.uniform:  # the holder's own deltas are the box's (base.py)
            sign = (old is None) - (submission.record is None)
            change = {name: sign * amount for name, amount in submission.deltas.items()}
        else:
            change = dict(submission.deltas)
            for name, amount in held_deltas(old).items() if old is not None else ():
                change[name] = change.get(name, 0) - amount
        for name, cap in submission.caps.items():
            step = change.get(name, 0)
            if step > 0 and state.counters.get(name, 0) + step > cap:
                return ApplyResult("capped", room.version, dict(state.counters), name)
        for name, step in change.items():
            if not step:
                continue
            value = state.counters.get(name, 0) + step
            if value:
                state.counters[name] = value
            else:
                state.counters.pop(name, None)
        held = submission.held()
        if held is None:
            state.records.pop(submission.viewer_id, None)
        else:
            state.records[submission.viewer_id] = held
        state.written = time.time()
        if not submission.versioned:  # bookkeeping: no key kept (base.py)
            return ApplyResult("applied", room.version, dict(state.counters))
        version = self._bump(room)
        if submission.keyed:
            state.done[submission.done_key] = version
        return ApplyResult("applied", version, dict(state.counters))

    def _box(self, room_id: str, interaction_id: str) -> _Interaction:
        """A box of an existing room, without adding one nobody contributed to."""
        return self._room(room_id).contributions.get(interaction_id) or _Interaction()

    async def counters(self, room_id: str, interaction_id: str) -> dict[str, int]:
        return dict(self._box(room_id, interaction_id).counters)

    async def records(self, room_id: str, interaction_id: str) -> dict[str, dict[str, Any]]:
        held = self._box(room_id, interaction_id).records
        return {viewer: held_record(raw) for viewer, raw in held.items()}

    async def read(
        self,
        room_id: str,
        counters: Collection[str],
        records: Collection[str],
        held: Collection[tuple[str, str]] = (),
    ) -> BoxData:
        self._room(room_id)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for box, holder in held:
            raw = self._box(room_id, box).records.get(holder)
            if raw is not None:
                found.setdefault(box, {})[holder] = held_record(raw)
        return BoxData(
            {box: await self.counters(room_id, box) for box in counters},
            {box: await self.records(room_id, box) for box in records},
            found,
        )

    async def set_presence(self, room_id: str, node_id: str, count: int, ttl_s: float) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.presence[node_id] = (count, time.time() + ttl_s)

    async def presence(self, room_id: str) -> int:
        room = self._rooms.get(room_id)
        if room is None:
            return 0
        now = time.time()
        return sum(count for count, expires in room.presence.values() if expires > now)

    async def set_node_stats(
        self, room_id: str, node_id: str, stats: dict[str, int], ttl_s: float
    ) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.stats[node_id] = (dict(stats), time.time() + ttl_s)

    async def room_stats(self, room_id: str) -> dict[str, int]:
        room = self._rooms.get(room_id)
        total: dict[str, int] = {}
        if room is None:
            return total
        now = time.time()
        for stats, expires in room.stats.values():
            if expires > now:
                for name, value in stats.items():
                    total[name] = total.get(name, 0) + value
        return total

    async def add_participants(self, room_id: str, user_ids: Collection[str]) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            now = time.time()
            room.participants.update(dict.fromkeys(user_ids, now))

    async def participants(self, room_id: str) -> int:
        room = self._rooms.get(room_id)
        return len(room.participants) + room.forgotten if room is not None else 0

    async def add_viewers(self, room_id: str, user_ids: Collection[str]) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.viewers.update(dict.fromkeys(user_ids, time.time()))

    async def unique_viewers(self, room_id: str) -> int:
        room = self._rooms.get(room_id)
        return len(room.viewers) + room.viewers_forgotten if room is not None else 0

    async def append_replay(self, room_id: str, events: list[dict[str, Any]], keep: int) -> None:
        room = self._rooms.get(room_id)
        if room is None:
            return
        room.replay.extend(orjson.dumps(e) for e in events)
        while len(room.replay) > keep:
            room.replay.popleft()

    async def replay(self, room_id: str, count: int) -> list[dict[str, Any]]:
        room = self._rooms.get(room_id)
        if room is None or count <= 0:
            return []
        return [orjson.loads(e) for e in list(room.replay)[-count:]]

    async def append_audit(self, room_id: str, entries: list[dict[str, Any]], keep: int) -> None:
        room = self._room(room_id)
        room.audit.extend(orjson.dumps(e) for e in entries)
        while len(room.audit) > max(0, keep):
            room.audit.popleft()

    async def audit_log(self, room_id: str) -> list[dict[str, Any]]:
        return [orjson.loads(e) for e in self._room(room_id).audit]

    async def redact_audit(self, room_id: str, user_id: str, replacement: str) -> int:
        room = self._room(room_id)
        found = re.compile(re.escape(audit_value(user_id)) + rb"(?=[,\]}])")
        new = audit_value(replacement)
        redacted = [found.subn(lambda _: new, e) for e in room.audit]
        room.audit = deque(e for e, _ in redacted)
        return sum(1 for _, n in redacted if n)

    async def viewer_data(self, room_id: str, viewer_id: str) -> ViewerData:
        return self._viewer(self._room(room_id), viewer_id, erase=False)

    async def erase_viewer(self, room_id: str, viewer_id: str) -> tuple[ViewerData, int]:
        room = self._room(room_id)
        data = self._viewer(room, viewer_id, erase=True)
        return data, room.version if data.empty() else self._bump(room)

    def _viewer(self, room: _Room, viewer_id: str, *, erase: bool) -> ViewerData:
        """Find the viewer's data in the room (viewers.py), and with ``erase`` remove it."""
        data = ViewerData(participant=viewer_id in room.participants)
        for box, state in room.contributions.items():
            for holder, raw in list(state.records.items()):
                found = holds(holder, raw, viewer_id)
                if found is None:
                    continue
                data.records.setdefault(box, {})[holder] = found["record"]
                if erase:
                    del state.records[holder]
                    for name, amount in found["deltas"].items():
                        value = state.counters.get(name, 0) - amount
                        if value:
                            state.counters[name] = value
                        else:
                            state.counters.pop(name, None)
            keys = [key for key in state.done if keyed_by(key, viewer_id)]
            data.keys += len(keys)
            for key in keys if erase else ():
                del state.done[key]
        for token_hash, (info, _expires) in list(room.tokens.items()):
            found_token = token_of(info, viewer_id)
            if found_token is not None:
                data.tokens.append(found_token)
                if erase:
                    del room.tokens[token_hash]
        kept: deque[bytes] = deque()
        for event in room.replay:
            sent = sent_by(event, viewer_id)
            if sent is None:
                kept.append(event)
            else:
                data.replay.append(sent)
        replacement = tombstone()
        for iid, state_raw in list(room.interactions.items()):
            scrub = scrubbed(state_raw, viewer_id, replacement)
            if scrub is not None:
                data.interactions.append(iid)
                if erase:
                    room.interactions[iid] = scrub
        if erase:
            room.replay = kept
            room.participants.pop(viewer_id, None)
            room.viewers.pop(viewer_id, None)
        return data

    async def prune(self, room_id: str, cutoffs: Cutoffs, now: float) -> tuple[int, int]:
        room = self._room(room_id)
        dropped, records = self._prune(room, cutoffs, now), 0
        for box, state in room.contributions.items():
            if box in KEPT_BOXES:
                continue
            stale = [h for h, raw in state.records.items() if stale_record(raw, cutoffs)]
            for holder in stale:
                del state.records[holder]  # the counters stay (retention.py)
            records += len(stale)
        return dropped + records, self._bump(room) if records else room.version

    def _prune(self, room: _Room, cutoffs: Cutoffs, now: float) -> int:
        """Drop old danmaku, the keys of boxes idle past the personal cutoff and expired
        token records; how many went."""
        dropped = 0
        if cutoffs.danmaku:
            kept = deque(e for e in room.replay if not stale_event(e, cutoffs))
            dropped += len(room.replay) - len(kept)
            room.replay = kept
        for state in room.contributions.values():
            if cutoffs.personal and state.written < cutoffs.personal and state.done:
                dropped += len(state.done)
                state.done.clear()
        for token_hash, (_, expires) in list(room.tokens.items()):
            if expires < now:
                del room.tokens[token_hash]
                dropped += 1
        if cutoffs.personal:
            old = [user for user, at in room.participants.items() if at < cutoffs.personal]
            for user in old:
                del room.participants[user]
            room.forgotten += len(old)
            dropped += len(old)
            old = [user for user, at in room.viewers.items() if at < cutoffs.personal]
            for user in old:
                del room.viewers[user]
            room.viewers_forgotten += len(old)
            dropped += len(old)
        return dropped

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryBroker:
    """Pub/sub between hubs of one process that share this object (the contract
    suite uses two); with one hub, publishing reaches only that hub."""

    def __init__(self) -> None:
        self._handlers: dict[int, MessageHandler] = {}
        self._subscriptions: dict[str, set[int]] = defaultdict(set)
        self._next = 0

    def connect(self) -> MemoryBrokerClient:
        self._next += 1
        return MemoryBrokerClient(self, self._next)

    def _deliver(self, sender: int, room_id: str, payload: bytes) -> None:
        # Never back to the sender: a relay drops its own messages anyway, and on the
        # embedded default (one hub) every flush would otherwise be unpacked only to be
        # dropped. Redis pub/sub does echo; the relay's check covers that side.
        loop = asyncio.get_running_loop()
        for client_id in self._subscriptions.get(room_id, ()):
            if client_id != sender:
                loop.call_soon(self._hand_over, client_id, room_id, payload)

    def _hand_over(self, client_id: int, room_id: str, payload: bytes) -> None:
        # Checked again now: nothing reaches a client once its unsubscribe has returned.
        handler = self._handlers.get(client_id)
        if handler is not None and client_id in self._subscriptions.get(room_id, ()):
            handler(room_id, payload)


class MemoryBrokerClient(Broker):
    """One node's connection to a MemoryBroker: the Broker interface in a process."""

    def __init__(self, broker: MemoryBroker, client_id: int) -> None:
        self._broker = broker
        self._id = client_id

    async def start(self, on_message: MessageHandler) -> None:
        self._broker._handlers[self._id] = on_message

    async def subscribe(self, room_id: str) -> None:
        self._broker._subscriptions[room_id].add(self._id)

    async def unsubscribe(self, room_id: str) -> None:
        self._broker._subscriptions[room_id].discard(self._id)

    async def publish(self, room_id: str, payload: bytes) -> None:
        self._broker._deliver(self._id, room_id, payload)

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        for room_id, payload in items:
            self._broker._deliver(self._id, room_id, payload)

    async def close(self) -> None:
        self._broker._handlers.pop(self._id, None)
        for members in self._broker._subscriptions.values():
            members.discard(self._id)
