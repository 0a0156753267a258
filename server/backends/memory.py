"""The embedded default Store: rooms in this process's memory."""

from __future__ import annotations

import dataclasses
from typing import Any

from server.backends.base import RoomExists, RoomNotFound, RoomRecord


class MemoryStore:
    def __init__(self) -> None:
        self._rooms: dict[str, RoomRecord] = {}

    async def create_room(self, room: RoomRecord) -> RoomRecord:
        if room.id in self._rooms:
            raise RoomExists(room.id)
        self._rooms[room.id] = room
        return room

    async def get_room(self, room_id: str) -> RoomRecord:
        try:
            return self._rooms[room_id]
        except KeyError:
            raise RoomNotFound(room_id) from None

    async def list_rooms(self) -> list[RoomRecord]:
        return sorted(self._rooms.values(), key=lambda r: r.created_at)

    async def update_room(
        self, room_id: str, *, title: str | None = None, settings: dict[str, Any] | None = None
    ) -> RoomRecord:
        room = await self.get_room(room_id)
        merged = {**room.settings, **(settings or {})}
        updated = dataclasses.replace(
            room,
            title=room.title if title is None else title,
            settings=merged,
            version=room.version + 1,
        )
        self._rooms[room_id] = updated
        return updated

    async def delete_room(self, room_id: str) -> None:
        if self._rooms.pop(room_id, None) is None:
            raise RoomNotFound(room_id)

    async def close(self) -> None:
        return None
