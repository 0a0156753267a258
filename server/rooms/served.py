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
    # the room version read before its last full read (everything stale; None: not yet):
    # a change after it was either heard (and read) or the room's version moved past it
    full_version: int | None = None
    # interactions that danmaku may change now (a keyword draw), with their kinds
    listeners: list[tuple[Kind[Any, Any], Definition]] = field(default_factory=list)
    # user id -> mute and ban record (server/rooms/moderation.py)
    moderation: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the room's token revocations (server/rooms/trust.py)
    revoked: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each audience's chain of state messages (PROTOCOL.md, "State messages"): the
    # views as its last state message left them, and that message's version
    sent: dict[Audience, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {a: {} for a in AUDIENCES}
    )
    sent_version: dict[Audience, int] = field(default_factory=lambda: dict.fromkeys(AUDIENCES, 0))
    # audiences handed a snapshot since their last state message, and per audience the
    # ids whose view such a snapshot may hold unsent and that changed again since: the
    # next message carries those whole, so it is right for every view handed out
    handed: set[Audience] = field(default_factory=set)
    whole: dict[Audience, set[str]] = field(default_factory=lambda: {a: set() for a in AUDIENCES})

    @property
    def id(self) -> str:
        return self.record.id

    def snapshot_views(self, audience: Audience) -> dict[str, dict[str, Any]]:
        """Every interaction's view for ``audience``, by id."""
        return dict(sorted(self.views[audience].items()))

    def hand_out(self, audience: Audience) -> tuple[int, dict[str, dict[str, Any]]]:
        """A snapshot's views for ``audience`` and the version to label them with: the
        next state message of the audience applies to them (its ``base`` is at most
        that version, and it is built to be right for them)."""
        self.handed.add(audience)
        label = max(self.version, self.record.version, self.sent_version[audience])
        return label, self.snapshot_views(audience)

    def keep_sent(self) -> None:
        """What is held now is what every audience's chain starts from (a fresh room)."""
        for audience in AUDIENCES:
            self.sent[audience] = dict(self.views[audience])
            self.sent_version[audience] = self.version
            self.changed[audience].clear()
