"""REST handlers for keyword alerts (PROTOCOL.md, "Keyword alerts"; protocol/openapi.yaml):
the room's watch lists and alerts, for hosts, moderators and the admin only."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from server.api.http import ApiError, json_response, read_body
from server.api.rooms import RoomsApi
from server.auth import Identity
from server.rooms.refusals import refusals
from server.rooms.service import RoomService


class AlertsApi:
    """Read and set a room's watch lists, read its alerts, acknowledge one."""

    def __init__(self, rooms_api: RoomsApi, rooms: RoomService) -> None:
        self.api = rooms_api
        self.callers = rooms_api.callers
        self.rooms = rooms

    async def _caller(self, request: Request, what: str) -> tuple[str, Identity | Literal["admin"]]:
        """The room id, and the staff caller: a room token's identity, or the admin."""
        room_id: str = request.path_params["room_id"]
        await self.callers.staff(request, room_id, what)
        return room_id, self.callers.who(request, room_id)

    async def listing(self, request: Request) -> Response:
        room_id, _ = await self._caller(request, "read keyword alerts")
        await self.api.room(room_id)
        async with refusals():
            return json_response(await self.rooms.alerts.listing(room_id))

    async def watchlists(self, request: Request) -> Response:
        room_id, by = await self._caller(request, "set watch lists")
        body = await read_body(request)
        unknown = set(body) - {"watchlists"}
        if unknown or "watchlists" not in body:
            raise ApiError(400, "invalid_field", 'send {"watchlists": [watch list…]}')
        await self.api.room(room_id)
        async with refusals():
            listing = await self.rooms.alerts.set_watchlists(room_id, body["watchlists"])
        ids = [w.get("id") for w in body["watchlists"]]
        await self.rooms.audit_log.record(
            room_id,
            by,
            "alerts.watchlists",
            {"room": room_id},
            "ok",
            {"watchlists": ids},
        )
        return json_response(listing)

    async def acknowledge(self, request: Request) -> Response:
        room_id, by = await self._caller(request, "acknowledge keyword alerts")
        await self.api.room(room_id)
        alert_id: str = request.path_params["alert_id"]
        async with refusals():
            staff = None if by == "admin" else by
            alert = await self.rooms.alerts.acknowledge(room_id, alert_id, staff)
        await self.rooms.audit_log.record(room_id, by, "alerts.ack", {"alert": alert_id})
        return json_response(alert)
