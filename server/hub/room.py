"""A room as the hub holds it: its connections here, its pending events and replay."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from protocol.codec import CODECS, Codec
from server.backends.base import RoomRecord
from server.hub.connection import Connection
from server.moderation.ratelimit import FairShare

# A state message costs one write per member (about 10 µs each, measured in the vote
# burst: 5,000 members took 45-55 ms a flush). A crowd gets its state less often, so
# that one room's state takes at most this share of a core: every 0.5 s at 5,000 members
# on a node, 2 s (the longest) from 20,000. Up to 2,500 members the level's interval
# holds (0.25 s at level 0).
STATE_WRITE_S = 10e-6
STATE_SHARE = 0.1
STATE_LONGEST_S = 2.0
# Acks first: while a burst arrives or waits for its commits (a full batch or more since
# the last flush, or queued), the room's state waits too, up to this long from the first
# flush it waited at. Every vote's ack is what its voter waits for; a state flush of a
# crowd holds the loop for tens of ms (5,000 members: 45-60 ms here) in the middle of
# the burst, and costs each member's client a frame to read; the next one shows it all.
BURST_BACKLOG = 256
STATE_DEFER_S = 1.0


def state_interval_s(members: int, level_interval_s: float) -> float:
    """How often a room with ``members`` connections here gets its changed views."""
    return max(level_interval_s, min(STATE_LONGEST_S, members * STATE_WRITE_S / STATE_SHARE))


class LiveRoom:
    """One room's local connections, grouped by audience and codec (a batch is encoded
    once per codec, a state message once per audience and codec), with the events
    waiting for the next tick and the danmaku kept for late joiners."""

    __slots__ = (
        "danmaku_budget",
        "groups",
        "id",
        "online_elsewhere",
        "online_told",
        "online_told_at",
        "pending",
        "record",
        "replay",
        "seq",
        "state_at",
        "state_held_at",
        "viewers",
    )

    def __init__(self, record: RoomRecord, replay_size: int, danmaku_budget: FairShare) -> None:
        self.id = record.id
        self.record = record
        # (audience, codec) -> connections; audiences come from the room layer.
        self.groups: dict[tuple[str, Codec], set[Connection]] = {}
        self.pending: list[dict[str, Any]] = []
        self.seq = 0
        self.replay: deque[dict[str, Any]] = deque(maxlen=replay_size)
        self.danmaku_budget = danmaku_budget  # shared fairly among the senders' addresses
        # Connections here with the viewer role: "online" counts people watching, not
        # the host's console or the screens (the overlay, the wall).
        self.viewers = 0
        # Viewers on the other nodes, as presence last read them (0 until read, and on
        # one node): added to this node's own count, which is always current.
        self.online_elsewhere = 0
        self.online_told: int | None = None  # the count last sent in an ``online`` message
        self.online_told_at = float("-inf")
        self.state_at = float("-inf")  # when its members were last sent a ``state``
        self.state_held_at: float | None = None  # when a burst began to hold it back

    @property
    def online(self) -> int:
        """Viewers in the room: here (now) and on the other nodes (as last read)."""
        return self.online_elsewhere + self.viewers

    def __len__(self) -> int:
        return sum(len(conns) for conns in self.groups.values())

    def state_due(self, now: float, interval_s: float, burst: int = 0) -> bool:
        """Whether the room's changed views go out at this flush: every ``interval_s``
        (the level's), or less often for a crowd, so that one room's state costs at most
        :data:`STATE_SHARE` of the node's core (:func:`state_interval_s`); later while a
        ``burst`` of contributions arrives or waits for its commits (:data:`BURST_BACKLOG`
        since the last flush), at most :data:`STATE_DEFER_S` from the first flush that
        held it: a crowd's votes are acknowledged before its members' state is written."""
        if burst >= BURST_BACKLOG:
            if self.state_held_at is None:
                self.state_held_at = now
            if now - self.state_held_at < STATE_DEFER_S:
                return False
        wanted = state_interval_s(len(self), interval_s)
        # Flushes come every ``interval_s``, a little late or early: half of one is slack.
        return wanted <= interval_s or now - self.state_at >= wanted - interval_s / 2

    def state_sent(self, now: float) -> None:
        self.state_at = now
        self.state_held_at = None

    def add(self, conn: Connection, audience: str) -> None:
        key = (audience, conn.codec)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = set()
        group.add(conn)

    def discard(self, conn: Connection, audience: str) -> bool:
        """Remove ``conn``; False when it was not a member."""
        group = self.groups.get((audience, conn.codec))
        if group is None or conn not in group:
            return False
        group.discard(conn)
        return True

    def by_codec(self) -> Iterator[tuple[Codec, list[set[Connection]]]]:
        """For each codec in use, the groups that read it (one encoding serves them all)."""
        for codec in CODECS:
            groups = [conns for (_, c), conns in self.groups.items() if c is codec and conns]
            if groups:
                yield codec, groups

    def members(self) -> Iterator[Connection]:
        for conns in list(self.groups.values()):
            yield from list(conns)

    def forget(self, event_id: Any) -> None:
        """A retracted danmaku leaves the replay: late joiners must not see it either."""
        kept = [e for e in self.replay if e.get("id") != event_id]
        if len(kept) != len(self.replay):
            self.replay.clear()
            self.replay.extend(kept)
