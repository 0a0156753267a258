"""Presence: each node publishes its viewer count per room (with a TTL; an unchanged
count only every third of it, server/backends/written.py) and reads the total, which
snapshots and ``…/stats`` show as ``online``; a room's connections learn a new count from
an ``online`` message, at most once a second."""

from __future__ import annotations

import time
from collections.abc import Iterable

from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.backends.written import LastWritten
from server.hub.room import LiveRoom
from server.metrics import Metrics

PRESENCE_INTERVAL_S = 2.0
PRESENCE_TTL_S = 10.0
ONLINE_EVERY_S = 1.0


class Presence:
    """Publishes how many viewers each room has on this node, learns the totals, and
    says which rooms' connections should hear a new count."""

    def __init__(self, store: Store, node_id: str, metrics: Metrics) -> None:
        self.store = store
        self.node_id = node_id
        self.metrics = metrics
        # a count is written again when it changed, or a third of its TTL later
        self.written = LastWritten(refresh_s=PRESENCE_TTL_S / 3)

    async def publish(self, rooms: Iterable[LiveRoom]) -> None:
        """Write each room's count here (when due), then read the totals of all of them
        (in one round trip per few hundred rooms on Redis)."""
        rooms = list(rooms)
        self.written.keep({room.id for room in rooms})
        for room in rooms:
            here, now = room.viewers, time.monotonic()
            if not self.written.due(room.id, here, now):
                continue
            try:
                await self.store.set_presence(room.id, self.node_id, here, PRESENCE_TTL_S)
            except RoomNotFound:
                continue
            except BackendUnavailable:
                return
            self.written.wrote(room.id, here, now)
        try:
            totals = await self.store.presence_many([room.id for room in rooms])
        except BackendUnavailable:
            return
        for room in rooms:
            room.online_elsewhere = max(0, totals.get(room.id, 0) - room.viewers)
        self.metrics.presence.set(max((room.online for room in rooms), default=0))

    @staticmethod
    def changed(rooms: Iterable[LiveRoom], now: float) -> list[tuple[LiveRoom, int]]:
        """The rooms whose online count moved since their connections last heard it, and
        the count, at most once per :data:`ONLINE_EVERY_S` a room (marked as told)."""
        due = []
        for room in rooms:
            count = room.online
            if count != room.online_told and now - room.online_told_at >= ONLINE_EVERY_S:
                room.online_told, room.online_told_at = count, now
                due.append((room, count))
        return due
