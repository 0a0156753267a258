"""Keeping the views of served rooms as the store has them (ARCHITECTURE.md, "Two kinds
of data, two delivery classes").

Views are computed from the store, not from counters kept here: when any node changes
an interaction it marks it stale in every node's copy of the room (locally, and through
the relay), and each node re-reads it at its next state flush (about 4 per second), so
views stay right across nodes without cache coherence. Each flush hands over, per
audience, the changes of the views that changed against the audience's previous state
message (:mod:`.deltas`); the hub encodes them once per audience and codec.

A flush reads only what the marks name: the stale interactions' counters and records,
and the room's definitions only when a mark said ``redefined`` (a host action; a vote
changes counters, not definitions). The version the new views are at is read from the
store at each flush (one small read), as the marks may not name the newest: the relay
loses messages when a node dies. A fresh room and a resync (versions unknown) also
read the definitions again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.delta import Delta
from server.backends.base import BackendUnavailable, RoomRecord, Store
from server.interactions.kind import AUDIENCES, Audience, Context, Definition, Needs
from server.interactions.registry import Registry
from server.rooms.deltas import take_delta
from server.rooms.moderation import MODERATION_BOX, banned_users
from server.rooms.outbox import RoomOutbox
from server.rooms.reading import StoreReader
from server.rooms.records import RoomRecords
from server.rooms.served import ServedRoom
from server.rooms.stats import RoomStats
from server.rooms.trust import REVOKED_BOX, Trust, refusal


@dataclass(frozen=True, slots=True)
class RoomChanges:
    """The changes of one room's views since the last flush, per audience."""

    room_id: str
    deltas: dict[str, Delta]  # audience -> its state message's changes


class ViewKeeper:
    """Keeps each served room's definitions, views and moderation records current: what
    changed here or on another node is re-read at the next flush and handed over."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        outbox: Callable[[], RoomOutbox],
        *,
        shared: bool,
        activities: tuple[str, ...] = ("danmaku",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.activities = activities
        self.registry = registry
        self.reader = StoreReader(store)
        self._outbox = outbox
        self.shared = shared
        self._clock = clock
        self.rooms: dict[str, ServedRoom] = {}
        self._dirty: set[ServedRoom] = set()
        self.records = RoomRecords(store, self)  # served rooms' records, for joins
        self.trust = Trust(store, clock)  # token revocations and incarnations (trust.py)

    # --- which rooms -----------------------------------------------------------------------

    def get(self, room_id: str) -> ServedRoom | None:
        return self.rooms.get(room_id)

    async def serve(self, record: RoomRecord) -> ServedRoom:
        """Start keeping the room's views here (idempotent): everything read once."""
        served = self.rooms.get(record.id)
        if served is not None:
            if record.version > served.record.version:
                served.record = record
                served.version = max(served.version, record.version)
            return served
        fresh = ServedRoom(record, RoomStats(self.shared, self.activities), version=record.version)
        fresh.moderation = await self.store.records(record.id, MODERATION_BOX)
        fresh.revoked = await self.store.records(record.id, REVOKED_BOX)
        definitions = await self.definitions(record.id)
        fresh.stale.update(definitions)
        await self.refresh(fresh)
        fresh.keep_sent()
        other = self.rooms.get(record.id)
        if other is not None:  # another join served it while we read the store
            return other
        self.rooms[record.id] = fresh
        return fresh

    def release(self, room_id: str) -> None:
        served = self.rooms.pop(room_id, None)
        self.records.forget(room_id)
        if served is not None:
            self._dirty.discard(served)

    def update_record(self, record: RoomRecord) -> bool:
        """Keep a newer record of a served room; True when it says something new (a
        record newer only because votes moved the room's version is kept quietly)."""
        served = self.rooms.get(record.id)
        if served is None or record.version <= served.record.version:
            return False
        changed = not record.same_room_as(served.record)
        served.record = record
        served.version = max(served.version, record.version)
        return changed

    # --- marking and refreshing --------------------------------------------------------------

    def mark(self, room_id: str, interaction_id: str, version: int, redefined: bool) -> None:
        """An interaction (or the moderation box) changed at ``version``: re-read it at
        the next flush, unless its views are that new already. ``redefined``: its
        definition changed too (a host action), not only its counters (a vote)."""
        served = self.rooms.get(room_id)
        if served is None or served.read_at.get(interaction_id, -1) >= version:
            return
        served.stale.add(interaction_id)
        if redefined:
            served.redefined.add(interaction_id)
        if served.marked is not None:
            served.marked = max(served.marked, version)
        self._dirty.add(served)

    def moved(self, record: RoomRecord) -> bool:
        """Whether the room's version (``record``, just read) moved since the last full read
        of its views: only then may a lost relay message have left them stale (lower: the
        room was deleted and made again)."""
        served = self.rooms.get(record.id)
        full = served.full_version if served is not None else None
        return served is not None and (full is None or record.version != full)

    def resync(self, room_ids: Iterable[str] | None = None) -> None:
        """Re-read everything served (after the store or the relay was away, and now and
        then), or only the rooms ``room_ids`` (a gap in a room's relay messages). The
        room records are re-read by the hub (``Rooms.reload``)."""
        if room_ids is None:
            self.records.forget_all()
            rooms = list(self.rooms.values())
        else:
            rooms = [self.rooms[r] for r in room_ids if r in self.rooms]
        for served in rooms:
            served.stale.update(served.definitions)
            served.redefined.update(served.definitions)
            served.stale.update((MODERATION_BOX, REVOKED_BOX))
            served.marked = None
            self._dirty.add(served)

    async def definitions(self, room_id: str) -> dict[str, Definition]:
        """The room's interactions from the store, with the instances every room has."""
        found = self.registry.builtins()
        for iid, stored in (await self.store.interactions(room_id)).items():
            definition = self.registry.decode(iid, stored)
            if definition is not None:
                found[iid] = definition
        return found

    async def refresh(self, served: ServedRoom) -> None:
        """Re-read the stale interactions of ``served`` and keep their new views; close
        the connections of users banned meanwhile."""
        stale, served.stale = served.stale, set()
        redefined, served.redefined = served.redefined, set()
        marked, served.marked = served.marked, 0
        everything = {MODERATION_BOX, REVOKED_BOX} | served.definitions.keys()
        whole = marked is None and everything <= stale  # a resync's: all is read again
        try:
            read_from = await self.store.room_version(served.id) if whole else None
            if redefined or marked is None:
                definitions = await self.definitions(served.id)
                stale |= definitions.keys() - served.definitions.keys()  # created meanwhile
            else:  # only counters changed: the definitions held are the store's
                definitions = served.definitions
            # The version is read, not taken from the marks: a relayed mark can be lost
            # (the relay is at most once) and then a later one names too old a version.
            version = max(marked or 0, await self.store.room_version(served.id))
            self._keep_definitions(served, definitions)
            if MODERATION_BOX in stale:
                await self.reload_moderation(served)
            if REVOKED_BOX in stale:
                await self.reload_revoked(served)
            targets = [definitions[i] for i in sorted(stale) if i in definitions]
            views = await self.compute(served.id, targets, served.record.settings, definitions)
        except BaseException:
            served.stale |= stale
            served.redefined |= redefined
            if marked is None or served.marked is None:
                served.marked = None
            else:
                served.marked = max(marked, served.marked)
            raise
        for iid, by_audience in views.items():
            served.read_at[iid] = version
            for audience, view in by_audience.items():
                held = served.views[audience]
                before = held.get(iid)
                if before != view:
                    if audience in served.handed and before != served.sent[audience].get(iid):
                        served.whole[audience].add(iid)  # a snapshot may hold ``before``
                    held[iid] = view
                    served.changed[audience].add(iid)
                    self._dirty.add(served)
        served.version = max(served.version, version)
        if read_from is not None:
            served.full_version = read_from

    async def reload_moderation(self, served: ServedRoom) -> None:
        served.moderation = await self.store.records(served.id, MODERATION_BOX)
        banned = banned_users(served.moderation)
        if banned:
            self._outbox().close_users(
                served.id, banned, "banned", "a moderator banned you from this room"
            )

    async def reload_revoked(self, served: ServedRoom) -> None:
        """Re-read the room's token revocations and close the sessions they revoke."""
        served.revoked = await self.store.records(served.id, REVOKED_BOX)
        if served.revoked:
            revoked, record, now = served.revoked, served.record, self._clock()
            self._outbox().close_sessions(
                served.id,
                lambda identity: refusal(identity, record, revoked, now) is not None,
                "token_revoked",
                "the token of this session was revoked",
            )

    def _keep_definitions(self, served: ServedRoom, definitions: dict[str, Definition]) -> None:
        served.definitions = definitions
        now = self._clock()
        served.listeners = [
            (kind, d)
            for d in definitions.values()
            if (kind := self.registry.get(d.kind)) is not None and kind.listens(d, now)
        ]

    async def compute(
        self,
        room_id: str,
        targets: Iterable[Definition],
        settings: Mapping[str, Any],
        definitions: Mapping[str, Definition],
    ) -> dict[str, dict[Audience, dict[str, Any]]]:
        """The views of ``targets`` for every audience, from one read of the store."""
        pairs = [(kind, d) for d in targets if (kind := self.registry.get(d.kind)) is not None]
        if not pairs:
            return {}

        def ask(ctx: Context) -> Needs:
            needs = Needs()
            for kind, d in pairs:
                needs = needs | kind.view_needs(d, ctx)
            return needs

        ctx = await self.reader.context(
            room_id, ask, now=self._clock(), settings=settings, definitions=definitions
        )
        return {d.id: kind.views(d, ctx) for kind, d in pairs}

    # --- the state path ------------------------------------------------------------------

    async def changes(self, due: Callable[[str], bool] = lambda _: True) -> list[RoomChanges]:
        """Refresh what is stale, then take the changed views (per audience) of every room
        that is ``due``; the others keep theirs for a later flush."""
        out = []
        for served in list(self._dirty):
            if self.rooms.get(served.id) is not served:
                self._dirty.discard(served)
                continue
            if not due(served.id):
                continue
            if served.stale:
                try:
                    await self.refresh(served)
                except BackendUnavailable:
                    continue  # still dirty: tried again at the next flush
            if not served.stale:
                self._dirty.discard(served)
            taken: dict[str, Delta] = {}
            for audience in AUDIENCES:
                if served.changed[audience]:
                    delta = take_delta(served, audience)
                    if delta is not None:
                        taken[audience] = delta
            if taken:
                out.append(RoomChanges(served.id, taken))
        return out
