"""The retention pass (PROTOCOL.md, "Privacy"): every node, now and then, has the store
drop what each room keeps past the room's retention settings
(server/backends/retention.py says what goes), a portion of the rooms per pass, and
has the views of a room that lost records re-read everywhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.backends.retention import Cutoffs, Retention
from server.rooms.privacy import reread
from server.rooms.service import RoomService

log = logging.getLogger("hudong.rooms")

# Retention is counted in hours and days: a pass every 10 minutes is precise enough,
# and a large room's pass (a scan of every held value) runs six times an hour.
PASS_EVERY_S = 600.0
ROOMS_PER_PASS = 100  # the next pass goes on where this one stopped


class RetentionPass:
    """Prunes the rooms of the store, a portion each pass, by their retention settings."""

    def __init__(
        self,
        store: Store,
        rooms: RoomService,
        *,
        clock: Callable[[], float] = time.time,
        every_s: float = PASS_EVERY_S,
        per_pass: int = ROOMS_PER_PASS,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self._clock = clock
        self.every_s = every_s
        self.per_pass = per_pass
        self._next = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.once()
            except BackendUnavailable:
                continue
            except Exception:  # pragma: no cover - the next pass tries again
                log.exception("retention pass failed")

    async def once(self) -> int:
        """One pass over the next portion of the rooms: how many values went."""
        records = await self.store.list_rooms()
        if not records:
            return 0
        start = self._next % len(records)
        portion = (records[start:] + records[:start])[: self.per_pass]
        self._next = start + len(portion)
        now, dropped = self._clock(), 0
        for record in portion:
            cutoffs = Cutoffs.at(now, Retention.of(record.settings))
            with contextlib.suppress(RoomNotFound):  # deleted since it was listed
                gone, version = await self.store.prune(record.id, cutoffs, now)
                dropped += gone
                if gone:
                    await reread(self.rooms, record.id, version)
        return dropped
