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


class LiveRoom:
    __slots__ = (
        "danmaku_bucket",
        "definitions",
        "degrade_level",
        "id",
        "interactions",
        "members",
        "online_total",
        "pending",
        "record",
        "replay",
        "seq",
        "stale",
        "state_dirty",
        "version",
    )

    def __init__(self, record: RoomRecord, replay_size: int, danmaku_bucket: TokenBucket) -> None:
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
        self.online_total: int | None = None  # all nodes; None until presence is read

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

    def snapshot(self) -> dict[str, Any]:
        """Everything a client needs to draw the room now (PROTOCOL.md, "Snapshot")."""
        return {
            "room": self.record.public(),
            "version": max(self.version, self.record.version),
            "seq": self.seq,
            "online": self.online_total if self.online_total is not None else len(self),
            "degrade": self.degrade_level,
            "interactions": {iid: held[1] for iid, held in sorted(self.interactions.items())},
            "recent": list(self.replay),
        }
