"""Bridges that survive the loss of their node: the lease loop of a node (PROTOCOL.md, "Bridges").

Every ``bridges.renew_s`` a node reads the bridges and leases (server/bridges/lease.py) of the
rooms it runs bridges in or serves, and, at start and every ``bridges.scan_all_s``, of every
room; a room read without a bridge is read again only ``lease_s - renew_s`` later. That
takes a bridge over just as soon: one added meanwhile was claimed before its record was
written (:meth:`Bridges.add`), so that read comes at least ``renew_s`` before its lease can
lapse, and from then on its room is read every round. For each bridge it runs, it renews
the lease, and stops the run (without writing its cursor) when the bridge was removed, when
another node holds the lease now, or when it could not renew before its own lease lapsed
(the store out of reach: another node may be taking over); a removed bridge's cursor, which
its run may have written after the removal, is withdrawn once the run stopped. For each
bridge nobody runs here, it claims the lease when it has lapsed, or when it names this node
(a restart under the same ``server.node_id``), and runs the bridge from its stored cursor; a
take-over from another node is counted (``hudong_bridge_takeovers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from server.backends.base import BackendUnavailable, RoomNotFound
from server.bridges.lease import (
    BRIDGES_BOX,
    CURSORS_BOX,
    LEASES_BOX,
    Lease,
    current,
    lease_seconds,
    renew_seconds,
)
from server.bridges.runner import Bridges

log = logging.getLogger("hudong.bridges")


class Failover:
    """A node's lease loop: renews its bridges' leases, stops the runs it lost, and takes
    over the bridges whose lease lapsed (module docstring)."""

    def __init__(self, bridges: Bridges) -> None:
        self.bridges = bridges
        self.renew_s = renew_seconds(bridges.settings)
        self.scan_all_s = bridges.settings.bridges.scan_all_s
        # how long a room read without a bridge is left unread (module docstring)
        self.bare_s = max(self.renew_s, lease_seconds(bridges.settings) - self.renew_s)
        self._bare: dict[str, float] = {}  # room id -> when it was read without a bridge
        self.task: asyncio.Task[None] | None = None
        self._scanned_all = 0.0
        self._refused: set[tuple[str, str]] = set()  # bridges this node cannot run, logged

    async def start(self) -> None:
        await self.scan(await self._all_rooms())
        self._scanned_all = time.monotonic()
        self.task = asyncio.get_running_loop().create_task(self._loop(), name="bridge leases")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def _all_rooms(self) -> list[str]:
        try:
            return [room.id for room in await self.bridges.store.list_rooms()]
        except BackendUnavailable:
            log.warning("bridge leases: the store is unavailable to list the rooms")
            return []

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                await self.tick()
            except Exception:  # a bug here must not end the leases of every bridge
                log.exception("bridge leases: a round failed")

    async def tick(self) -> None:
        """One round: the rooms with a bridge here and those this node serves, and every
        room when ``scan_all_s`` has passed."""
        running = {room_id for (room_id, _), run in self.bridges.runs.items() if not run.remote}
        rooms = running | set(self.bridges.hub.live)
        if self.scan_all_s > 0 and time.monotonic() - self._scanned_all >= self.scan_all_s:
            self._scanned_all = time.monotonic()
            rooms.update(await self._all_rooms())
        since = time.monotonic() - self.bare_s
        self._bare = {
            room: at
            for room, at in self._bare.items()
            if at > since and room in rooms and room not in running
        }
        await self.scan(rooms - self._bare.keys())

    async def scan(self, rooms: Iterable[str]) -> None:
        for room_id in sorted(set(rooms)):
            await self.tend(room_id)

    async def tend(self, room_id: str) -> None:
        """Renew, stop or take over the bridges of one room."""
        read_at = time.monotonic()
        try:
            boxes = (BRIDGES_BOX, LEASES_BOX, CURSORS_BOX)
            data = await self.bridges.store.read(room_id, (), boxes)
        except RoomNotFound:
            await self._stop_room(room_id, lambda run: True, "the room was deleted")
            return
        except BackendUnavailable:
            now = time.time()
            lapsed = lambda run: run.lease is not None and run.lease.lapsed(now)  # noqa: E731
            await self._stop_room(room_id, lapsed, "its lease lapsed out of the store's reach")
            return
        configs = data.records.get(BRIDGES_BOX, {})
        if configs:
            self._bare.pop(room_id, None)
        else:
            self._bare[room_id] = read_at
        leases = current(data.records.get(LEASES_BOX, {}))
        cursors = data.records.get(CURSORS_BOX, {})
        await self._renew(room_id, configs, leases)
        for bid, record in sorted(configs.items()):
            key = (room_id, bid)
            if key in self.bridges.runs or key in self.bridges.adding:
                continue
            lease = leases.get(bid)
            if (
                lease is None
                or lease.node == self.bridges.node_id
                or self.bridges.alone
                or lease.lapsed(time.time())
            ):
                with contextlib.suppress(BackendUnavailable, RoomNotFound):
                    # (a bridge kept before its cursor had a box of its own: its record)
                    await self.take(room_id, bid, record, lease, cursors.get(bid, record))

    async def _renew(
        self, room_id: str, configs: Mapping[str, Any], leases: Mapping[str, Lease]
    ) -> None:
        node = self.bridges.node_id
        for (rid, bid), run in list(self.bridges.runs.items()):
            if rid != room_id or run.lease is None:
                continue
            lease = leases.get(bid)
            if bid not in configs:
                why = "it was removed"
            elif lease is None or lease.epoch != run.lease.epoch or lease.node != node:
                holder = lease.node if lease is not None else "nobody"
                why = f"its lease is {holder}'s now"
            else:
                try:
                    run.lease = await self.bridges.leases.renew(room_id, run.lease)
                    await run.save_cursor(force=True)
                    continue
                except (BackendUnavailable, RoomNotFound):
                    if not run.lease.lapsed(time.time()):
                        continue
                    why = "its lease lapsed out of the store's reach"
            await self._stop(room_id, bid, why)
            if bid not in configs:
                # The run may have written its cursor after the removal (on another
                # node): stopped now, it writes no more, so nothing of the bridge stays.
                with contextlib.suppress(BackendUnavailable, RoomNotFound):
                    await self.bridges.write(room_id, bid, None, CURSORS_BOX)

    async def _stop_room(self, room_id: str, which: Any, why: str) -> None:
        for (rid, bid), run in list(self.bridges.runs.items()):
            if rid == room_id and run.lease is not None and which(run):
                await self._stop(room_id, bid, why)

    async def _stop(self, room_id: str, bid: str, why: str) -> None:
        run = self.bridges.runs.pop((room_id, bid), None)
        if run is not None:
            log.warning("bridge %s of room %s stopped here: %s", bid, room_id, why)
            await run.stop(save=False)

    async def take(
        self,
        room_id: str,
        bid: str,
        record: Mapping[str, Any],
        lease: Lease | None,
        where: Mapping[str, Any],
    ) -> None:
        """Claim the bridge's lease and run it from its cursor (``where``: its record of the
        cursors' box), if this node wins it."""
        bridges = self.bridges
        try:
            adapter = bridges.adapter(str(record.get("platform")), str(record.get("channel")))
        except ValueError as exc:
            if (room_id, bid) not in self._refused:
                self._refused.add((room_id, bid))
                log.warning("bridge %s of room %s not run here: %s", bid, room_id, exc)
            return
        won = await bridges.leases.claim(room_id, bid, lease)
        if won is None or (room_id, bid) in bridges.runs:
            return
        if lease is not None and lease.node != bridges.node_id:
            bridges.metrics.bridge_takeovers.labels(adapter.platform).inc()
            log.warning("bridge %s of room %s taken over from %s", bid, room_id, lease.node)
        bridges._start(room_id, adapter, where.get("cursor"), where.get("seen", ()), won)


__all__ = ["Failover"]
