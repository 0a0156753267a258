"""What the room layer tells the hub: the one way from ``server/rooms`` to the part
that holds connections. The hub implements it; nothing here imports the hub."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from server.auth import Identity
from server.backends.base import RoomRecord


class RoomOutbox(Protocol):
    """The hub, as the room layer tells it what to send."""

    def interaction_changed(
        self, room_id: str, interaction_id: str, version: int, redefined: bool
    ) -> None:
        """An interaction changed in the store: tell the other nodes serving the room
        (this node's own views are already marked). ``redefined``: its definition
        changed (a host action), not only what viewers contributed."""

    def announce(
        self,
        room_id: str,
        event: dict[str, Any],
        notify: Collection[str] = (),
        notice: dict[str, Any] | None = None,
        private: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Put ``event`` in the room's stream, here and on every node; ``notice`` goes
        privately to the connections of the users in ``notify``, and each of
        ``private`` (user id -> notice) to that user's alone."""

    def tell_staff(self, room_id: str, notice: dict[str, Any]) -> None:
        """Send ``notice`` at once to the room's host and moderator connections on this
        node (the admin's console joins as a host); other nodes tell their own."""

    def close_users(self, room_id: str, user_ids: Collection[str], close: str, reason: str) -> None:
        """Close the viewers' connections of these users to the room (close code name)."""

    def close_sessions(
        self, room_id: str, doomed: Callable[[Identity], bool], close: str, reason: str
    ) -> None:
        """Close every connection to the room, staff too, whose identity is ``doomed``
        (a revoked token)."""

    def room_updated(self, record: RoomRecord) -> None:
        """The room's title or settings changed: members get a snapshot, other nodes know."""

    def room_deleted(self, room_id: str) -> None:
        """The room is gone: members are closed, other nodes know."""

    def online(self, room_id: str) -> int:
        """Viewers connected to the room on this node."""
