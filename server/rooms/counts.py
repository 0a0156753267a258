"""A room's live counts over every node (GET /api/v1/rooms/{id}/stats): on one node
its own, in a cluster what each node reported to the store (with a TTL) every 2 s (an
unchanged report a third of the TTL later: server/backends/written.py); and
the room's top words (server/rooms/top_words.py), flushed to the store as often."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from typing import Any

from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.backends.written import LastWritten
from server.rooms.kept import KeptAnswers
from server.rooms.outbox import RoomOutbox
from server.rooms.served import ServedRoom
from server.rooms.stats import RoomStats
from server.rooms.timeline import Timeline
from server.rooms.top_words import TopWords
from server.rooms.views import ViewKeeper

REPORT_INTERVAL_S = 2.0  # live counts to the store, for the other nodes
REPORT_TTL_S = 10.0
# The distinct participants and viewers over every node are read again after a report that
# added some here, else this often: a node's minute records then show what the others
# added within this long, and their own records (the timeline takes the most) at once.
DISTINCT_EVERY_S = 6.0
# A room's timeline (GET …/timeline) is answered again from the last read this long: every
# open cockpit asks every 5 s, and after a day a read merges 1,440 records a node.
HISTORY_S = 2.0


class LiveCounts:
    """Answers a room's live counts and, when nodes share rooms, reports this node's."""

    def __init__(
        self,
        store: Store,
        views: ViewKeeper,
        outbox: Callable[[], RoomOutbox],
        activities: tuple[str, ...],
        node_id: str,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.views = views
        self.outbox = outbox
        self.activities = activities
        self.node_id = node_id
        self._clock = clock
        self.timeline = Timeline(store, node_id, activities, clock)
        # a report is written again when it changed, or a third of its TTL later
        self.written = LastWritten(refresh_s=REPORT_TTL_S / 3)
        # room -> (participants, unique viewers) over every node, and when they were read
        self._distinct: dict[str, tuple[tuple[int, int], float]] = {}
        self.words = TopWords(store, node_id, clock)
        self._histories: KeptAnswers[dict[str, Any]] = KeptAnswers(HISTORY_S, clock)

    def danmaku(self, served: ServedRoom, user_id: str, text: str, now: float) -> None:
        """A danmaku accepted here: counted, and its text kept for the top words."""
        served.stats.add("danmaku", user_id, now)
        self.words.said(served.id, text)

    async def stats(self, room_id: str) -> dict[str, Any]:
        """Online viewers, participants, unique viewers and per-minute counts of each
        activity."""
        served = self.views.get(room_id)
        if self.views.shared:
            totals = await self.store.room_stats(room_id)
            # Not the nodes' sum: a viewer who sent (or joined) on two nodes counts once.
            totals["participants"] = await self.store.participants(room_id)
            totals["unique_viewers"] = await self.store.unique_viewers(room_id)
            online = await self.store.presence(room_id)
        else:
            totals = served.stats.report(self._clock()) if served is not None else {}
            online = self.outbox().online(room_id)
        counts = {f"{a}_per_min": 0 for a in self.activities}
        counts.update(totals)
        return {
            "online": online,
            "participants": counts.pop("participants", 0),
            "unique_viewers": counts.pop("unique_viewers", 0),
            **counts,
        }

    async def history(self, room_id: str) -> dict[str, Any]:
        """The room's timeline over every node (:meth:`Timeline.series`), read again at most
        every :data:`HISTORY_S`: twenty cockpits cost one read, not twenty."""
        return await self._histories.get(room_id, lambda: self.timeline.series(room_id))

    def seen(self, room_id: str, user_id: str) -> None:
        """A viewer joined the room here: count it among the unique viewers."""
        served = self.views.get(room_id)
        if served is not None:
            served.stats.seen(user_id)

    async def report_loop(self) -> None:
        """Publish this node's counts of each served room (with a TTL) for the others,
        when nodes share rooms, and its minute of each room's timeline."""
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S)
            rooms = list(self.views.rooms.values())
            served_ids = {served.id for served in rooms}
            self.timeline.forget(served_ids)
            self.words.forget(served_ids)
            self.written.keep(served_ids)
            self._distinct = {r: d for r, d in self._distinct.items() if r in served_ids}
            self._histories.prune()
            for served in rooms:
                report = served.stats.report(self._clock())
                distinct = report["participants"], report["unique_viewers"]
                try:
                    if self.views.shared:
                        distinct = await self._share(served.id, served.stats, report)
                    online = self.outbox().online(served.id)
                    await self.timeline.note(served.id, served.stats, online, distinct)
                except RoomNotFound:
                    continue  # deleted meanwhile
                except BackendUnavailable:
                    break
            with contextlib.suppress(BackendUnavailable, RoomNotFound):
                await self.words.flush()  # the top words: segmented here, off the hot path

    def forget_written(self, room_ids: Collection[str] | None = None) -> None:
        """Write every report (of ``room_ids``) at the next round again: the store may
        have lost them (server/backends/written.py)."""
        self.written.forget(room_ids)
        self.timeline.written.forget(room_ids)
        for room_id in list(self._distinct) if room_ids is None else room_ids:
            self._distinct.pop(room_id, None)

    async def _share(
        self, room_id: str, stats: RoomStats, report: dict[str, int]
    ) -> tuple[int, int]:
        """Report to the store; the participants and unique viewers over every node (read
        again when this report added some, or after :data:`DISTINCT_EVERY_S`)."""
        fresh, viewers = stats.take_fresh(), stats.take_fresh_viewers()
        now = self._clock()
        try:
            if self.written.due(room_id, report, now):
                await self.store.set_node_stats(room_id, self.node_id, report, REPORT_TTL_S)
                self.written.wrote(room_id, report, now)
            await self.store.add_participants(room_id, fresh)
            await self.store.add_viewers(room_id, viewers)
        except (BackendUnavailable, RoomNotFound):
            stats.fresh |= fresh  # with the next report
            stats.fresh_viewers |= viewers
            raise
        read = self._distinct.get(room_id)
        if read is None or fresh or viewers or now - read[1] >= DISTINCT_EVERY_S:
            distinct = (
                await self.store.participants(room_id),
                await self.store.unique_viewers(room_id),
            )
            read = self._distinct[room_id] = (distinct, now)
        return read[0]
