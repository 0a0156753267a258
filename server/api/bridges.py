"""REST handlers for platform chat bridges (PROTOCOL.md, "Bridges"; protocol/openapi.yaml):
a room's bridges for its hosts and the admin, and the generic webhook's intake."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from server.api.http import ApiError, json_response, read_body
from server.api.rooms import RoomsApi
from server.backends.base import RoomNotFound
from server.bridges import webhook
from server.bridges.runner import Bridges
from server.rooms.refusals import refusals


class BridgesApi:
    """List, add and remove a room's bridges; take a signed webhook post."""

    def __init__(self, rooms_api: RoomsApi, bridges: Bridges) -> None:
        self.api = rooms_api
        self.callers = rooms_api.callers
        self.bridges = bridges
        self.audit_log = rooms_api.rooms.audit_log

    async def _host(self, request: Request, what: str) -> str:
        room_id: str = request.path_params["room_id"]
        role = await self.callers.staff(request, room_id, what)
        if role not in ("admin", "host"):
            raise ApiError(403, "forbidden", f"the {role} role may not {what}")
        await self.api.room(room_id)
        return room_id

    async def listing(self, request: Request) -> Response:
        room_id = await self._host(request, "read the room's bridges")
        async with refusals():
            return json_response(await self.bridges.listing(room_id))

    async def add(self, request: Request) -> Response:
        room_id = await self._host(request, "add bridges")
        by = self.callers.who(request, room_id)
        body = await read_body(request)
        platform, channel = body.get("platform"), body.get("channel")
        unknown = set(body) - {"platform", "channel"}
        if unknown or not isinstance(platform, str) or not isinstance(channel, str):
            raise ApiError(
                400, "invalid_field", 'send {"platform": "twitch", "channel": "<channel id>"}'
            )
        try:
            async with refusals():
                actor = "admin" if by == "admin" else by.user_id
                bridge = await self.bridges.add(room_id, platform, channel, actor)
        except ValueError as exc:
            raise ApiError(400, "invalid_field", str(exc)) from None
        target = {"bridge": bridge["id"]}
        await self.audit_log.record(room_id, by, "bridge.add", target)
        return json_response(bridge, 201)

    async def remove(self, request: Request) -> Response:
        room_id = await self._host(request, "remove bridges")
        by = self.callers.who(request, room_id)
        bid = f"{request.path_params['platform']}:{request.path_params['channel']}"
        async with refusals():
            removed = await self.bridges.remove(room_id, bid)
        if not removed:
            raise ApiError(404, "unknown_target", f"room {room_id!r} has no bridge {bid!r:.80}")
        await self.audit_log.record(room_id, by, "bridge.remove", {"bridge": bid})
        return Response(status_code=204)

    async def webhook(self, request: Request) -> Response:
        """A signed post of the generic webhook (server/bridges/webhook.py): 202 once the
        bridge has it; 401 for a bad signature or an old timestamp, changing nothing."""
        room_id: str = request.path_params["room_id"]
        channel: str = request.path_params["channel"]
        body = await request.body()
        settings = self.bridges.settings
        try:
            webhook.verify(
                settings.bridges.webhook.secret,
                request.headers.get(webhook.TIMESTAMP_HEADER),
                request.headers.get(webhook.SIGNATURE_HEADER),
                body,
                time.time(),
                settings.bridges.webhook.max_skew_s,
            )
            message = webhook.parse_body(body, settings.limits.max_text_chars)
            adapter = self.bridges.running(room_id, "webhook", channel)
            if not isinstance(adapter, webhook.WebhookAdapter):
                raise webhook.Refused(
                    404,
                    "unknown_target",
                    f"room {room_id!r} has no webhook bridge {channel!r:.80} on this node",
                )
            adapter.push(message)
        except webhook.Refused as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None
        return json_response({"accepted": True}, 202)
