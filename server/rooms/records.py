"""The room records of the rooms this node serves, kept here so a join reads no store.

A join needs the room's record (title, settings) to admit its viewer. On a node that
already serves the room, the record it holds is current as long as no change since
its read was missed: every room update is relayed to every node serving the room
(``u``, then :meth:`RoomRecords.reread`; a deletion ``x`` ends serving). So a record is
trusted only when it was read while the room was served here, and hence while this
node followed the room's channel (the hub follows a room before its first join is
served), and nothing dropped it while the read was under way.

Relay messages are at most once: a resync (after the store or broker was away)
forgets every trusted record, and the check every 15 s reads each one again
(server/hub/loops.py), so a missed update is seen at the next join after it at the
latest, as missed interaction changes are.
Joins that arrive together share one read of the record.
"""

from __future__ import annotations

import asyncio
from collections import Counter
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
        self._reading: dict[str, asyncio.Task[RoomRecord]] = {}
        # What was forgotten while a read was under way is not kept from that read.
        self._epoch = 0  # grows at each forget_all
        self._drops: Counter[str] = Counter()  # forgets per room

    async def get(self, room_id: str) -> RoomRecord:
        """The room's record: from memory when trusted (see the module docstring), else
        read; raises as :meth:`Store.get_room` (RoomNotFound, BackendUnavailable)."""
        served = self.serving.get(room_id)
        kept = self._kept.get(room_id)
        if served is not None and kept is not None and kept[0] is served:
            record = kept[1]
            # a local update (RoomService.update_room) is in the served room already
            return served.record if served.record.version > record.version else record
        reading = self._reading.get(room_id) or self._start(room_id)
        return await asyncio.shield(reading)  # joins that arrive together share a read

    async def reread(self, room_id: str) -> RoomRecord:
        """The room changed on another node (a relayed ``u``): forget its record and
        read it again (kept when the room is served here)."""
        self.forget(room_id)
        return await asyncio.shield(self._start(room_id))

    def _start(self, room_id: str) -> asyncio.Task[RoomRecord]:
        # A task of its own: a join that gives up waiting does not end the others' read.
        reading = asyncio.get_running_loop().create_task(
            self._read(room_id, self._epoch, self._drops[room_id])
        )
        self._reading[room_id] = reading
        reading.add_done_callback(lambda task: self._done(room_id, task))
        return reading

    def _done(self, room_id: str, reading: asyncio.Task[RoomRecord]) -> None:
        if self._reading.get(room_id) is reading:
            del self._reading[room_id]
        if not reading.cancelled():
            reading.exception()  # retrieved here too: every waiter may have given up

    async def _read(self, room_id: str, epoch: int, drops: int) -> RoomRecord:
        record = await self.store.get_room(room_id)
        served = self.serving.get(room_id)
        if served is not None and (epoch, drops) == (self._epoch, self._drops[room_id]):
            self._kept[room_id] = (served, record)
        return record

    def forget(self, room_id: str) -> None:
        self._drops[room_id] += 1
        self._kept.pop(room_id, None)

    def forget_all(self) -> None:
        """A resync: changes may have been missed while the relay was away."""
        self._epoch += 1
        self._drops.clear()
        self._kept.clear()
