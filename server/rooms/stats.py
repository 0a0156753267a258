"""Live counts of a room on this node: what happened in the last minute, who took part."""

from __future__ import annotations

from collections import deque


class RoomStats:
    """What happened in a room on this node over the last minute, in 5-second buckets:
    counts per activity (``danmaku``, and what each kind's viewer commands count as:
    ``votes``, ``posts`` …), and who took part since the
    room opened here (participants: viewers who sent anything; viewers: who joined as a
    viewer). When the room is ``shared`` with other nodes, ``fresh`` and
    ``fresh_viewers`` hold the ids not yet added to the store's counts over all nodes."""

    BUCKET_S = 5.0
    WINDOW_S = 60.0
    MAX_PARTICIPANTS = 1_000_000  # past this, the count stops growing (memory bound)

    __slots__ = (
        "_buckets",
        "_shared",
        "activities",
        "fresh",
        "fresh_viewers",
        "participants",
        "viewers",
    )

    def __init__(self, shared: bool = False, activities: tuple[str, ...] = ("danmaku",)) -> None:
        self.activities = activities
        self._buckets: dict[str, deque[list[float]]] = {}
        self.participants: set[str] = set()
        self.fresh: set[str] = set()
        self.viewers: set[str] = set()
        self.fresh_viewers: set[str] = set()
        self._shared = shared

    def add(self, kind: str, user_id: str | None, now: float) -> None:
        buckets = self._buckets.get(kind)
        if buckets is None:
            buckets = self._buckets[kind] = deque()
        start = now - now % self.BUCKET_S
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] += 1
        else:
            buckets.append([start, 1])
            while buckets and buckets[0][0] <= now - self.WINDOW_S - self.BUCKET_S:
                buckets.popleft()
        if (
            user_id is not None
            and user_id not in self.participants
            and len(self.participants) < self.MAX_PARTICIPANTS
        ):
            self.participants.add(user_id)
            if self._shared:
                self.fresh.add(user_id)

    def seen(self, user_id: str) -> None:
        """A viewer joined: a unique viewer, once per id (bounded as the participants)."""
        if user_id not in self.viewers and len(self.viewers) < self.MAX_PARTICIPANTS:
            self.viewers.add(user_id)
            if self._shared:
                self.fresh_viewers.add(user_id)

    def take_fresh_viewers(self) -> set[str]:
        """The viewers seen since the last call (for the store's count over all nodes)."""
        fresh, self.fresh_viewers = self.fresh_viewers, set()
        return fresh

    def take_fresh(self) -> set[str]:
        """The participants since the last call (for the store's count over all nodes)."""
        fresh, self.fresh = self.fresh, set()
        return fresh

    def per_minute(self, kind: str, now: float) -> int:
        """Events of ``kind`` in the last minute (whole buckets; up to 5 s more)."""
        since = now - self.WINDOW_S
        return int(
            sum(n for start, n in self._buckets.get(kind, ()) if start + self.BUCKET_S > since)
        )

    def in_minute(self, kind: str, start: float) -> int:
        """Events of ``kind`` from ``start`` (a whole minute) for 60 s, while its buckets
        are kept (until 5 s past the window)."""
        end = start + self.WINDOW_S
        return int(sum(n for at, n in self._buckets.get(kind, ()) if start <= at < end))

    def report(self, now: float) -> dict[str, int]:
        """``<activity>_per_min`` for each of ``activities``, ``participants`` and
        ``unique_viewers``."""
        out = {f"{kind}_per_min": self.per_minute(kind, now) for kind in self.activities}
        out["participants"] = len(self.participants)
        out["unique_viewers"] = len(self.viewers)
        return out
