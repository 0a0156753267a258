"""REST handlers for one viewer's data (PROTOCOL.md, "Privacy"): the admin exports it
(``GET``) or erases it (``DELETE``), in one room or in every room. The viewer is named
by the id the wire shows, or with ``?external=true`` by the id the integrator or
platform knows (its ``sub``), which is turned into the pseudonym first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.api.http import ApiError, Callers, json_response
from server.backends.base import RoomNotFound
from server.rooms.privacy import ViewerPrivacy

MAX_USER_ID_CHARS = 128


class PrivacyApi:
    """Export and erasure of one viewer's data, for the admin only."""

    def __init__(self, privacy: ViewerPrivacy, callers: Callers) -> None:
        self.privacy = privacy
        self.callers = callers

    async def _target(self, request: Request) -> tuple[str, str | None]:
        """The viewer id and the room (None: every room), once the caller is the admin."""
        room_id: str | None = request.path_params.get("room_id")
        if room_id is None:
            self.callers.require_admin(request)
        else:
            role = await self.callers.role(request, room_id)
            if role != "admin":
                raise ApiError(
                    403,
                    "forbidden",
                    f"only the admin may read or erase viewer data, not a {role}",
                )
        user_id: str = request.path_params["user_id"]
        if not 1 <= len(user_id) <= MAX_USER_ID_CHARS:
            raise ApiError(
                400, "invalid_field", f"a user id has 1 to {MAX_USER_ID_CHARS} characters"
            )
        external = request.query_params.get("external", "false")
        if external not in ("true", "false"):
            raise ApiError(400, "invalid_field", "external must be true or false")
        if external == "true":  # the integrator's or platform's id: its pseudonym here
            user_id = self.callers.authority.viewer_id(user_id, "viewer", guest=False)
        return user_id, room_id

    async def export(self, request: Request) -> Response:
        user_id, room_id = await self._target(request)
        try:
            return json_response(await self.privacy.export(user_id, room_id))
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None

    async def erase(self, request: Request) -> Response:
        user_id, room_id = await self._target(request)
        try:
            return json_response(await self.privacy.erase(user_id, room_id))
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None
