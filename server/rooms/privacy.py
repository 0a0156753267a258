"""Privacy (PROTOCOL.md, "Privacy"): export and erase one viewer's data, in one room or
in every room, for the admin.

What a store holds about a viewer, and how erasing it keeps results consistent, is
described in server/backends/viewers.py: the viewer's contributions are withdrawn (a
tally loses their votes, as when a viewer withdraws), the rest is deleted, and an
interaction state that names them (a draw's winners) names a random ``erased-…`` id
instead. After an erasure every node serving the room re-reads its views, and the
viewer's danmaku are retracted (off the screens and out of every node's replay).
"""

from __future__ import annotations

from typing import Any

from server.backends.base import RoomNotFound, Store
from server.rooms.moderation import MODERATION_BOX
from server.rooms.service import RoomService


class ViewerPrivacy:
    """Finds, exports and erases one viewer's data across the rooms of the store."""

    def __init__(self, store: Store, rooms: RoomService) -> None:
        self.store = store
        self.rooms = rooms

    async def _room_ids(self, room_id: str | None) -> list[str]:
        if room_id is not None:
            await self.store.get_room(room_id)  # RoomNotFound for a missing room
            return [room_id]
        return [record.id for record in await self.store.list_rooms()]

    async def export(self, viewer_id: str, room_id: str | None = None) -> dict[str, Any]:
        """Everything held about the viewer, per room where anything is held."""
        rooms: dict[str, Any] = {}
        for rid in await self._room_ids(room_id):
            try:
                data = await self.store.viewer_data(rid, viewer_id)
            except RoomNotFound:
                if room_id is not None:
                    raise
                continue  # deleted since it was listed
            if not data.empty() or data.participant:
                rooms[rid] = data.to_json()
        return {"user_id": viewer_id, "rooms": rooms}

    async def erase(self, viewer_id: str, room_id: str | None = None) -> dict[str, Any]:
        """Erase the viewer's data; answers what was erased, counted per room."""
        rooms: dict[str, Any] = {}
        for rid in await self._room_ids(room_id):
            try:
                data, version = await self.store.erase_viewer(rid, viewer_id)
            except RoomNotFound:
                if room_id is not None:
                    raise
                continue
            # The audit log names the viewer where staff acted on them: the id leaves it.
            audited = await self.rooms.audit_log.forget(rid, viewer_id)
            if data.empty() and not data.participant and not audited:
                continue
            rooms[rid] = {
                "audit_entries": audited,
                "records": sum(len(held) for held in data.records.values()),
                "idempotency_keys": data.keys,
                "tokens": len(data.tokens),
                "danmaku": len(data.replay),
                "interactions": sorted(data.interactions),
            }
            await reread(self.rooms, rid, version)
            # Its danmaku leave the screens and every node's replay, as a retraction.
            for event in data.replay:
                self.rooms.outbox().announce(rid, {"type": "retract", "id": event.get("id")})
            # Who erased, and how much: never whose data it was.
            detail = {k: v for k, v in rooms[rid].items() if k != "interactions"}
            await self.rooms.audit_log.record(
                rid, "admin", "viewer.erase", {"room": rid}, "ok", detail
            )
        return {"user_id": viewer_id, "rooms": rooms}


async def reread(rooms: RoomService, room_id: str, version: int) -> None:
    """Every node serving the room re-reads all its views (held records went away)."""
    for iid in await rooms.views.definitions(room_id):
        rooms.changed(room_id, iid, version, redefined=True)
    rooms.changed(room_id, MODERATION_BOX, version)
    served = rooms.views.get(room_id)
    if served is not None:
        await rooms.views.reload_moderation(served)
