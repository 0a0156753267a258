"""A room as one node sees it: its local connections, pending events, replay buffer,
and the latest view of each interaction."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from protocol.codec import CODECS, Codec
from server.backends.base import RoomRecord
from server.moderation.ratelimit import TokenBucket

if TYPE_CHECKING:
    from server.hub.connection import Connection


class RoomStats:
    """What happened in a room on this node over the last minute, in 5-second buckets:
    counts per kind (``danmaku``, ``votes``, ``posts``), and who took part since the
    room opened here (participants: viewers who sent anything). When the room is
    ``shared`` with other nodes, ``fresh`` holds the participants not yet added to the
    store's count over all nodes."""

    BUCKET_S = 5.0
    WINDOW_S = 60.0
    MAX_PARTICIPANTS = 1_000_000  # past this, the count stops growing (memory bound)

    __slots__ = ("_buckets", "_shared", "fresh", "participants")

    def __init__(self, shared: bool = False) -> None:
        self._buckets: dict[str, deque[list[float]]] = {}
        self.participants: set[str] = set()
        self.fresh: set[str] = set()
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

    def report(self, now: float) -> dict[str, int]:
        return {
            "danmaku_per_min": self.per_minute("danmaku", now),
            "votes_per_min": self.per_minute("votes", now),
            "posts_per_min": self.per_minute("posts", now),
            "participants": len(self.participants),
        }


class LiveRoom:
    __slots__ = (
        "danmaku_bucket",
        "definitions",
        "degrade_level",
        "id",
        "interactions",
        "members",
        "moderation",
        "online_total",
        "pending",
        "record",
        "replay",
        "seq",
        "staff",
        "staff_dirty",
        "staff_views",
        "stale",
        "state_dirty",
        "stats",
        "version",
        "viewers",
    )

    def __init__(
        self,
        record: RoomRecord,
        replay_size: int,
        danmaku_bucket: TokenBucket,
        *,
        shared: bool = False,
    ) -> None:
        self.id = record.id
        self.record = record
        # Connections grouped by codec: a batch is encoded once per group that is not empty.
        self.members: dict[Codec, set[Connection]] = {codec: set() for codec in CODECS}
        self.pending: list[dict[str, Any]] = []
        self.seq = 0
        self.replay: deque[dict[str, Any]] = deque(maxlen=replay_size)
        self.danmaku_bucket = danmaku_bucket
        # Interaction id -> [room version of the view, public view]; newest version wins.
        self.interactions: dict[str, list[Any]] = {}
        self.state_dirty: set[str] = set()
        # Interactions changed here or on another node whose views must be re-read.
        self.stale: set[str] = set()
        self.degrade_level = 0  # set by the hub when it sends a snapshot
        self.definitions: dict[str, Any] = {}
        self.version = record.version
        # Connections here with the viewer role: "online" counts people watching, not
        # the host's console or the screens (the overlay, the wall).
        self.viewers = 0
        self.online_total: int | None = None  # viewers on all nodes; None until read
        # Hosts and moderators here (also in ``members``): they get host views, which
        # show what viewers do not see (the wall's queue, hidden questions and results).
        self.staff: set[Connection] = set()
        self.staff_views: dict[str, Any] = {}
        self.staff_dirty: set[str] = set()
        # Muted and banned users: user id -> record (see Hub.moderate).
        self.moderation: dict[str, dict[str, Any]] = {}
        self.stats = RoomStats(shared)

    def __len__(self) -> int:
        return sum(len(conns) for conns in self.members.values())

    def set_view(
        self, interaction_id: str, version: int, view: Any, *, force: bool = False
    ) -> bool:
        """Keep ``view`` if it is newer than the one held (or ``force``: read just now from
        the store); True when it was kept."""
        held = self.interactions.get(interaction_id)
        if held is not None and (held[0] > version or (held[0] == version and not force)):
            return False
        if held is not None and held[1] == view:
            return False
        self.interactions[interaction_id] = [version, view]
        self.version = max(self.version, version)
        self.state_dirty.add(interaction_id)
        return True

    def set_staff_view(self, interaction_id: str, view: Any) -> None:
        if self.staff_views.get(interaction_id) != view:
            self.staff_views[interaction_id] = view
            self.staff_dirty.add(interaction_id)

    def snapshot(self, *, staff: bool = False) -> dict[str, Any]:
        """Everything a client needs to draw the room now (PROTOCOL.md, "Snapshot");
        ``staff``: with host views."""
        views = {iid: held[1] for iid, held in self.interactions.items()}
        if staff:
            views.update(self.staff_views)
        return {
            "room": self.record.public(),
            "version": max(self.version, self.record.version),
            "seq": self.seq,
            "online": self.online_total if self.online_total is not None else self.viewers,
            "degrade": self.degrade_level,
            "interactions": dict(sorted(views.items())),
            "recent": list(self.replay),
        }
