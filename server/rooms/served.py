"""A room as this node's room layer holds it while the room has members here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.backends.base import RoomRecord
from server.interactions.kind import AUDIENCES, Audience, Definition, Kind
from server.rooms.stats import RoomStats


@dataclass(eq=False)
class ServedRoom:
    """One served room: its record, its interactions and the views of each audience, what
    must be re-read and what changed since the last flush, mutes and bans, token
    revocations, live counts."""

    record: RoomRecord
    stats: RoomStats
    version: int = 0
    definitions: dict[str, Definition] = field(default_factory=dict)
    # audience -> interaction id -> view
    views: dict[Audience, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {a: {} for a in AUDIENCES}
    )
    # interaction id -> the room version its views were read at (newer marks re-read it)
    read_at: dict[str, int] = field(default_factory=dict)
    # audience -> ids whose view changed since the last flush
    changed: dict[Audience, set[str]] = field(default_factory=lambda: {a: set() for a in AUDIENCES})
    # ids (and '~' boxes) changed here or on another node, to re-read at the next flush
    stale: set[str] = field(default_factory=set)
    # ids whose definition (not only their counters) changed since it was last read:
    # until the next flush, commands read those from the store, not this copy
    redefined: set[str] = field(default_factory=set)
    # the newest room version the marks since the last flush named; None: unknown (a
    # fresh room, a resync), so the next flush reads the definitions and the version
    marked: int | None = None
    # interactions that danmaku may change now (a keyword draw), with their kinds
    listeners: list[tuple[Kind[Any, Any], Definition]] = field(default_factory=list)
    # user id -> mute and ban record (server/rooms/moderation.py)
    moderation: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the room's token revocations (server/rooms/trust.py)
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.record.id

    def snapshot_views(self, audience: Audience) -> dict[str, dict[str, Any]]:
        """Every interaction's view for ``audience``, by id."""
        return dict(sorted(self.views[audience].items()))
