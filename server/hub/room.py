"""A room as one node sees it: its local connections, pending events, replay buffer."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from protocol.codec import CODECS, Codec
from server.backends.base import RoomRecord
from server.moderation.ratelimit import TokenBucket

if TYPE_CHECKING:
    from server.hub.connection import Connection


class LiveRoom:
    __slots__ = ("danmaku_bucket", "id", "members", "pending", "record", "replay", "seq")

    def __init__(self, record: RoomRecord, replay_size: int, danmaku_bucket: TokenBucket) -> None:
        self.id = record.id
        self.record = record
        # Connections grouped by codec: a batch is encoded once per group that is not empty.
        self.members: dict[Codec, set[Connection]] = {codec: set() for codec in CODECS}
        self.pending: list[dict[str, Any]] = []
        self.seq = 0
        self.replay: deque[dict[str, Any]] = deque(maxlen=replay_size)
        self.danmaku_bucket = danmaku_bucket

    def __len__(self) -> int:
        return sum(len(conns) for conns in self.members.values())

    def snapshot(self) -> dict[str, Any]:
        """Everything a client needs to draw the room now (PROTOCOL.md, "Snapshot")."""
        return {
            "room": self.record.public(),
            "version": self.record.version,
            "seq": self.seq,
            "online": len(self),
            "recent": list(self.replay),
        }
