"""Danmaku as input to interactions (issue 18): an accepted danmaku goes to each
interaction that listens to danmaku now (a keyword draw's entry, a poll's or a co-design
round's vote by danmaku), and what the kind makes of it is committed with the room's
batch (server/rooms/commits.py), in arrival order.

A danmaku is acknowledged when the stream took it, before its vote is committed: the
vote follows within the room's next commit, and the view moves with the next flush. A
danmaku that a vote counted is what the room's ``hide_vote_danmaku`` keeps off the
scrolling layer (server/hub/stream.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from server.backends.base import BackendUnavailable, RoomNotFound
from server.interactions.kind import Kind, Viewer
from server.rooms.commits import GroupCommit
from server.rooms.served import ServedRoom

Changed = Callable[[str, str, int], None]


class DanmakuInput:
    """Hands an accepted danmaku to the interactions that listen, and commits what they
    make of it; says whether one of them took it as a vote."""

    def __init__(
        self, commits: GroupCommit, changed: Changed, contributed: Callable[[str, str], None]
    ) -> None:
        self.commits = commits
        self.changed = changed
        self.contributed = contributed  # metrics: a contribution of this kind
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self, served: ServedRoom, who: Viewer, text: str, now: float) -> bool:
        """Run ``text`` through the room's listeners; True when a vote or pick took it."""
        voted = False
        for kind, d in served.listeners:
            write = kind.on_danmaku(d, who, text, now)
            if write is None:
                continue
            voted = voted or kind.danmaku_votes
            # Queued now, in arrival order: "1" then "2" from one sender ends as "2".
            done = self.commits.write(served.id, write)
            task = asyncio.get_running_loop().create_task(
                self._committed(served, kind, d.id, who.id, now, done)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return voted

    async def settled(self) -> None:
        """Wait until every danmaku taken so far is committed (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _committed(
        self,
        served: ServedRoom,
        kind: Kind[Any, Any],
        iid: str,
        user_id: str,
        now: float,
        done: asyncio.Future[Any],
    ) -> None:
        try:
            result = await done
        except (BackendUnavailable, RoomNotFound):
            return  # like a vote the store could not take: the danmaku stays a danmaku
        if result.status == "applied":
            self.changed(served.id, iid, result.version)
            if kind.ops:
                served.stats.add(kind.ops[0].counts_as, user_id, now)
            self.contributed(kind.name, served.id)
