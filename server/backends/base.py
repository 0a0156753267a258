"""The Store interface: where room records live.

Guarantees every implementation gives (the contract suite in ``tests/`` checks them):

- a write that returned has been committed; a failed write changed nothing;
- ``version`` of a room increases by one with every successful update;
- room ids are unique: ``create_room`` on an existing id raises :class:`RoomExists`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class RoomNotFound(KeyError):
    pass


class RoomExists(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: str
    title: str
    created_at: float
    version: int = 1
    settings: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created_at": int(self.created_at * 1000),  # ms since the epoch
            "version": self.version,
            "settings": {**ROOM_SETTING_DEFAULTS, **self.settings},
        }


# Room settings and their defaults; PROTOCOL.md, "Rooms" documents them.
ROOM_SETTING_DEFAULTS: dict[str, Any] = {
    "allow_anonymous": True,
}


class Store(Protocol):
    async def create_room(self, room: RoomRecord) -> RoomRecord: ...

    async def get_room(self, room_id: str) -> RoomRecord: ...

    async def list_rooms(self) -> list[RoomRecord]: ...

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord: ...

    async def delete_room(self, room_id: str) -> None: ...

    async def close(self) -> None: ...
