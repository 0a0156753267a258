"""The room records of the rooms this node serves, kept here so a join reads no store.

A join needs the room's record (title, settings) to admit its viewer. On a node that
already serves the room, the record it holds is current as long as no change since
its read was missed: every room update is relayed to every node serving the room
(``u``, then :meth:`RoomRecords.read` again; a deletion ``x`` ends serving). So a
record is trusted only when it was read while the room was served here, and hence
while this node followed the room's channel (the hub follows a room before its first
join is served), and nothing dropped it while the read was under way.

Relay messages are at most once: a resync (after the store or broker was away, and
every 15 s; server/hub/loops.py) forgets every trusted record, so a missed update is
seen at the next join after it at the latest, as missed interaction changes are.
"""

from __future__ import annotations

from typing import Protocol

from server.backends.base import RoomRecord, Store


class _Served(Protocol):
    """A room as the ViewKeeper serves it: its record, kept newest by version."""

    @property
    def record(self) -> RoomRecord: ...


class _Serving(Protocol):
    """Which rooms are served here (the ViewKeeper)."""

    def get(self, room_id: str) -> _Served | None: ...


class RoomRecords:
    """Answers a served room's record from memory, and reads any other from the store."""

    def __init__(self, store: Store, serving: _Serving) -> None:
        self.store = store
        self.serving = serving
        # room id -> (the served room it was read for, the record)
        self._kept: dict[str, tuple[_Served, RoomRecord]] = {}
        self._drops = 0  # grows at each forget: a read under way then is not kept

    async def get(self, room_id: str) -> RoomRecord:
        """The room's record: from memory when trusted (see the module docstring), else
        read; raises as :meth:`Store.get_room` (RoomNotFound, BackendUnavailable)."""
        served = self.serving.get(room_id)
        kept = self._kept.get(room_id)
        if served is not None and kept is not None and kept[0] is served:
            record = kept[1]
            # a local update (RoomService.update_room) is in the served room already
            return served.record if served.record.version > record.version else record
        return await self.read(room_id)

    async def read(self, room_id: str) -> RoomRecord:
        """Read the record from the store (a relayed ``u``: the room changed elsewhere),
        and keep it when the room is served here."""
        self.forget(room_id)
        drops = self._drops
        record = await self.store.get_room(room_id)
        served = self.serving.get(room_id)
        if served is not None and drops == self._drops:
            self._kept[room_id] = (served, record)
        return record

    def forget(self, room_id: str) -> None:
        self._drops += 1
        self._kept.pop(room_id, None)

    def forget_all(self) -> None:
        """A resync: changes may have been missed while the relay was away."""
        self._drops += 1
        self._kept.clear()
