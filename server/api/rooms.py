"""REST handlers for rooms and their tokens (PROTOCOL.md, "REST API")."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from protocol.messages import ROOM_ID_RE, CommandError
from server.api.http import ApiError, Callers, json_response, read_body
from server.auth import MAX_TTL_S, RANK, ROLES, Authority, Identity, incarnation_of
from server.backends.base import RoomExists, RoomNotFound, RoomRecord, Store
from server.config import LimitsSettings
from server.room_settings import SettingError, check_settings
from server.rooms.refusals import refusals
from server.rooms.service import RoomService
from server.rooms.trust import REVOKED_BOX

DEFAULT_TOKEN_TTL_S = 24 * 3600  # or what the minting token has left, if less
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


def _settings(value: Any) -> dict[str, Any]:
    try:
        return check_settings(value)
    except SettingError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None


def _title(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
        raise ApiError(400, "invalid_field", "title must be a string of 1 to 200 characters")
    return value.strip()


class RoomsApi:
    """Rooms (list, create, read, change, delete) and room tokens."""

    def __init__(
        self,
        store: Store,
        authority: Authority,
        rooms: RoomService,
        online: Callable[[str], int],
        callers: Callers | None = None,
        limits: LimitsSettings | None = None,
    ) -> None:
        self.limits = limits or LimitsSettings()
        self.store = store
        self.authority = authority
        # shared with the other handlers: one count of wrong tokens per address
        self.callers = callers if callers is not None else Callers(authority)
        self.callers.vouch = self._vouch  # revoked tokens, tokens of an earlier room
        self.rooms = rooms
        self.online = online

    async def room(self, room_id: str) -> RoomRecord:
        try:
            return await self.store.get_room(room_id)
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None

    async def _vouch(self, identity: Identity) -> None:
        """Refuse a room token that its room no longer honours (server/rooms/trust.py):
        the room's list of a room served here, else the store's."""
        record = await self.room(identity.room)
        served = self.rooms.views.get(identity.room)
        try:
            async with refusals():
                await self.rooms.views.trust.check(
                    identity, record, served.revoked if served else None
                )
        except CommandError as exc:
            if exc.code != "unauthorized":
                raise
            raise ApiError(401, "unauthorized", exc.message) from None

    def view(self, record: RoomRecord) -> dict[str, Any]:
        return {**record.public(), "online": self.online(record.id)}

    async def list(self, request: Request) -> Response:
        self.callers.require_admin(request)
        rooms = await self.store.list_rooms()
        return json_response({"rooms": [self.view(r) for r in rooms]})

    async def create(self, request: Request) -> Response:
        self.callers.require_admin(request)
        body = await read_body(request)
        room_id = body.get("id")
        if room_id is None:
            room_id = secrets.token_urlsafe(6).replace("_", "x").replace("-", "x")
        if not isinstance(room_id, str) or not ROOM_ID_RE.match(room_id):
            raise ApiError(400, "invalid_field", f"id must match {ROOM_ID_RE.pattern}")
        title = _title(body.get("title"), room_id)
        record = RoomRecord(room_id, title, time.time(), 1, _settings(body.get("settings")))
        most = self.limits.max_rooms
        if most and await self.store.room_count() >= most:
            raise ApiError(
                409,
                "limit_reached",
                f"there are {most} rooms, the cap (limits.max_rooms); delete one first",
            )
        try:
            await self.store.create_room(record)
        except RoomExists:
            raise ApiError(409, "room_exists", f"room {room_id!r} exists already") from None
        detail = {"title": title, "settings": record.settings}
        await self.rooms.audit_log.record(
            room_id, "admin", "room.create", {"room": room_id}, "ok", detail
        )
        return json_response(self.view(record), 201)

    async def get(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        await self.callers.staff(request, room_id, "read room settings")
        return json_response(self.view(await self.room(room_id)))

    async def update(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = await self.callers.role(request, room_id)
        if role not in ("admin", "host"):
            raise ApiError(403, "forbidden", f"the {role} role may not change a room")
        body = await read_body(request)
        unknown = set(body) - {"title", "settings"}
        if unknown:
            raise ApiError(
                400, "invalid_field", f"unknown fields {sorted(unknown)}; send title, settings"
            )
        await self.room(room_id)
        title = _title(body.get("title"), "") or None
        settings = _settings(body.get("settings"))
        record = await self.rooms.update_room(room_id, title=title, settings=settings)
        target = {"room": room_id, "settings": sorted(settings)}
        detail = {"settings": settings, **({"title": title} if title else {})}
        by = self.callers.who(request, room_id)
        await self.rooms.audit_log.record(room_id, by, "room.update", target, "ok", detail)
        return json_response(self.view(record))

    async def delete(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = await self.callers.role(request, room_id)
        if role != "admin":
            raise ApiError(403, "forbidden", f"only the admin may delete a room, not a {role}")
        await self.rooms.delete_room(room_id)
        self.rooms.audit_log.gone(room_id, "admin")  # its log went with it: the node's log
        return Response(status_code=204)

    async def mint_token(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        minter = await self.callers.identity(request, room_id)
        caller = "admin" if minter is None else minter.role
        body = await read_body(request)
        role = body.get("role")
        if role not in ROLES:
            raise ApiError(400, "invalid_field", f"role must be one of {', '.join(ROLES)}")
        # A token mints only a lower role (a host: moderator, screen, viewer); the admin any.
        if minter is not None and not (caller == "host" and RANK[role] < RANK[caller]):
            raise ApiError(403, "forbidden", f"the {caller} role may not mint {role} tokens")
        record = await self.room(room_id)
        user_id = body.get("user_id") or f"{role}-{secrets.token_hex(4)}"
        if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
            raise ApiError(400, "invalid_field", f"user_id must match {USER_ID_RE.pattern}")
        # The id the token's holder has here: a viewer's pseudonym (server/auth.py); the
        # default name is that id, never the outside one.
        held_as = self.authority.viewer_id(user_id, role, guest=False)
        name = body.get("name") or held_as
        if not isinstance(name, str) or len(name) > 32:
            raise ApiError(400, "invalid_field", "name must be a string of at most 32 characters")
        # A token mints no token that outlives it.
        left = MAX_TTL_S if minter is None else int(minter.expires_at - time.time())
        ttl = body.get("ttl_s", min(DEFAULT_TOKEN_TTL_S, left))
        if type(ttl) is not int or not 1 <= ttl <= MAX_TTL_S:
            raise ApiError(
                400, "invalid_field", f"ttl_s must be an integer of seconds, 1 to {MAX_TTL_S}"
            )
        if ttl > left:
            raise ApiError(
                400,
                "invalid_field",
                f"ttl_s {ttl} is longer than the minting token has left ({max(0, left)} s): "
                "a token mints no token that outlives it",
            )
        token, expires, jti = self.authority.issue(
            room_id, role, user_id, name, ttl, incarnation=incarnation_of(record.created_at)
        )
        # Only the hash is kept: who minted which token, without being able to use it.
        digest = hashlib.sha256(token.encode()).hexdigest()
        await self.store.remember_token(
            room_id,
            digest,
            {"role": role, "user_id": held_as, "by": caller},
            ttl,
            self.limits.tokens_kept_per_room,
        )
        target = {"user": held_as, "token_role": role}
        detail = {"ttl_s": ttl, "expires_at": expires}  # no name: personal data
        by = self.callers.who(request, room_id)
        await self.rooms.audit_log.record(room_id, by, "token.mint", target, "ok", detail)
        return json_response(
            {
                "token": token,
                "room": room_id,
                "role": role,
                "user_id": held_as,
                "sub": user_id,  # the id it was minted for; a viewer's is in the token only
                "name": name,
                "jti": jti,
                "expires_at": expires,
            },
            201,
        )

    async def revocations(self, request: Request) -> Response:
        """POST: revoke every token of a role, or one token by its ``jti`` (host, admin);
        GET: the revocations in force (PROTOCOL.md, "Token lifecycle")."""
        room_id = request.path_params["room_id"]
        role = await self.callers.role(request, room_id)
        if role not in ("admin", "host"):
            raise ApiError(403, "forbidden", f"the {role} role may not revoke tokens")
        await self.room(room_id)
        if request.method == "GET":
            async with refusals():
                return json_response(await self.rooms.views.trust.listing(room_id))
        body = await read_body(request)
        if role == "host" and body.get("role") in RANK and RANK[body["role"]] >= RANK[role]:
            # as for minting: a host takes back lower roles' tokens; the admin any
            raise ApiError(403, "forbidden", f"the host role may not revoke {body['role']} tokens")
        unknown = set(body) - {"role", "jti"}
        if unknown:
            raise ApiError(
                400, "invalid_field", f"unknown fields {sorted(unknown)}; send role or jti"
            )
        async with refusals():
            reply = await self.rooms.views.trust.revoke(room_id, body)
            # Every node serving the room re-reads the list at its next flush, and closes
            # the sessions it revokes; this one at once.
            self.rooms.changed(room_id, REVOKED_BOX, reply["version"])
            served = self.rooms.views.get(room_id)
            if served is not None:
                await self.rooms.views.reload_revoked(served)
        target: dict[str, Any] = {k: body[k] for k in ("role", "jti") if k in body}
        by = self.callers.who(request, room_id)
        await self.rooms.audit_log.record(room_id, by, "token.revoke", target)
        return json_response(reply, 201)
