"""A room's per-minute history for the cockpit (GET /api/v1/rooms/{id}/timeline).

Each node writes, with its live counts, one record per room and minute (again only when it
changed) into the room's ``~timeline`` box of the store (a box no interaction id can name,
like ``~moderation``): the most viewers it had online in that minute, the events of each
activity counted in that minute, the participants and unique viewers so far, and the
highest degrade level of the minute. The store keeps it, so every node, and a node that
restarted, reads the same history; it keeps :data:`KEEP_MINUTES` of it: the last day in
which the room was served, which stays after the event for its report (retention keeps the
box, server/backends/retention.py). What falls out of the day is dropped at the minutes'
turns, without reading the box but once an hour, at a minute of each room's own
(:meth:`Timeline._expired`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from server.backends.base import Store, Submission
from server.backends.written import LastWritten
from server.rooms.stats import RoomStats

TIMELINE_BOX = "~timeline"
KEEP_MINUTES = 24 * 60  # a day of minutes per node; older ones are dropped
MINUTE_S = 60
# At a minute's turn a node drops its own minute that fell out of the day, unread; every
# this many minutes, and after a gap in its minutes, it reads the box for every node's.
SWEEP_MINUTES = 60


def sweeps(room_id: str, minute: int) -> bool:
    """Whether a room's box is swept at this minute's turn: once every
    :data:`SWEEP_MINUTES`, at a minute of its own (the rooms of a node in turn, not all in
    one round)."""
    return (minute + zlib.crc32(room_id.encode())) % SWEEP_MINUTES == 0


def holder(minute: int, node_id: str) -> str:
    """A record's holder in the box: never a viewer id (``~`` is not allowed in one)."""
    return f"~{minute}~{node_id}"


def _entry(holder: str, record: dict[str, Any] | None) -> tuple[str, Submission]:
    return TIMELINE_BOX, Submission(holder, "", record, {}, {}, False, False, True)


def merge(
    records: dict[str, dict[str, Any]], since: int, activities: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Every node's records as one series, oldest minute first: viewers and activities
    summed over the nodes, participants and unique viewers (counts over all nodes
    already) and the degrade level their most."""
    minutes: dict[int, dict[str, Any]] = {}
    for record in records.values():
        minute = int(record.get("m", 0))
        if minute < since:
            continue
        row = minutes.setdefault(
            minute,
            {"minute": minute * MINUTE_S * 1000, "online": 0, "participants": 0}
            | {"unique_viewers": 0, "degrade": 0}
            | {a: 0 for a in activities},
        )
        row["online"] += int(record.get("online", 0))
        for most in ("participants", "unique_viewers"):
            row[most] = max(row[most], int(record.get(most, 0)))
        row["degrade"] = max(row["degrade"], int(record.get("degrade", 0)))
        for activity in activities:
            row[activity] += int(record.get(activity, 0))
    return [minutes[m] for m in sorted(minutes)]


class Timeline:
    """Writes this node's per-minute records of the rooms it serves and reads a room's
    whole series back from the store."""

    def __init__(
        self,
        store: Store,
        node_id: str,
        activities: tuple[str, ...],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.activities = activities
        self._clock = clock
        # room -> (minute, most online in it, highest degrade level in it)
        self._peaks: dict[str, tuple[int, int, int]] = {}
        self.level: Callable[[str], int] = lambda room_id: 0  # the app sets the hub's
        # the record last written per room: a quiet room's minute is written once
        self.written = LastWritten()

    def _record(
        self, minute: int, stats: RoomStats, peaks: tuple[int, int], distinct: tuple[int, int]
    ) -> dict[str, Any]:
        counts = {a: stats.in_minute(a, minute * MINUTE_S) for a in self.activities}
        online, degrade = peaks
        return {
            "m": minute,
            "online": online,
            "participants": distinct[0],
            "unique_viewers": distinct[1],
            "degrade": degrade,
            "node": self.node_id,
            **counts,
        }

    async def note(
        self, room_id: str, stats: RoomStats, online: int, distinct: tuple[int, int]
    ) -> None:
        """Write the current minute's record (``distinct``: the participants and unique
        viewers so far) (and, once a minute has passed, the last
        one's final counts, and drop the records past :data:`KEEP_MINUTES`). Raises what
        the store raises; nothing is lost but this report."""
        minute = int(self._clock() // MINUTE_S)
        last, online_peak, level_peak = self._peaks.get(room_id, (minute, 0, 0))
        items = []
        if last != minute:
            final = self._record(last, stats, (online_peak, level_peak), distinct)
            if self.written.due(room_id, final, 0.0):  # a quiet minute's is written already
                items.append(_entry(holder(last, self.node_id), final))
            items += await self._expired(room_id, last, minute)
            online_peak = level_peak = 0
        online_peak = max(online_peak, online)
        level_peak = max(level_peak, int(self.level(room_id)))
        self._peaks[room_id] = (minute, online_peak, level_peak)
        record = self._record(minute, stats, (online_peak, level_peak), distinct)
        if not items and not self.written.due(room_id, record, 0.0):
            return  # the store has this very record
        items.append(_entry(holder(minute, self.node_id), record))
        await self.store.submit_many(room_id, items)
        self.written.wrote(room_id, record, 0.0)

    async def _expired(self, room_id: str, last: int, minute: int) -> list[tuple[str, Submission]]:
        """The records that fall out of the day at this minute's turn. From one minute to
        the next: this node's own minute that did, unread (a node writes 1,440 records a
        day, and every served room turns its minute in the same round). At the room's
        sweep (:func:`sweeps`), and after a gap in this node's minutes (the room was not
        served here meanwhile): every node's, read from the box, since a node that
        stopped leaves its records behind and a restarted one sweeps within the hour."""
        if minute - last == 1 and not sweeps(room_id, minute):
            return [_entry(holder(minute - KEEP_MINUTES, self.node_id), None)]
        old = await self.store.records(room_id, TIMELINE_BOX)
        return [
            _entry(h, None) for h, r in old.items() if int(r.get("m", 0)) <= minute - KEEP_MINUTES
        ]

    def forget(self, room_ids: set[str]) -> None:
        """Stop tracking rooms this node no longer serves."""
        for room_id in set(self._peaks) - room_ids:
            del self._peaks[room_id]
        self.written.keep(room_ids)

    async def series(self, room_id: str) -> dict[str, Any]:
        """The room's minutes over every node, and the most viewers of any minute."""
        records = await self.store.records(room_id, TIMELINE_BOX)
        # The last day in which the room was served: a report made days after the event
        # still has the event's minutes (no node prunes a room it does not serve).
        now = int(self._clock() // MINUTE_S)
        last = max((int(r.get("m", 0)) for r in records.values()), default=now)
        minutes = merge(records, last - KEEP_MINUTES + 1, self.activities)
        peak = max((row["online"] for row in minutes), default=0)
        # Node health: each node's latest minute (a node that stopped writing is stale).
        latest: dict[str, dict[str, Any]] = {}
        for record in records.values():
            node = str(record.get("node", ""))
            if node and int(record.get("m", 0)) >= int(latest.get(node, {}).get("m", -1)):
                latest[node] = record
        nodes = [
            {
                "node": node,
                "minute": int(r["m"]) * MINUTE_S * 1000,
                "online": int(r.get("online", 0)),
                "degrade": int(r.get("degrade", 0)),
            }
            for node, r in sorted(latest.items())
        ]
        return {
            "room": room_id,
            "activities": list(self.activities),
            "peak_online": peak,
            "minutes": minutes,
            "nodes": nodes,
        }
