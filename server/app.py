"""The Starlette application: REST API, health, metrics. ``/ws`` is served by the hub.

Built by :func:`create_app` from one :class:`~server.config.Settings`; nothing is
created at import time. The lifespan starts the hub and yields it as lifespan
state, where the WebSocket protocol class (:class:`server.hub.Connection`) finds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.messages import ROOM_ID_RE
from server import __version__
from server import demo as demo_room
from server.auth import ROLES, STAFF_ROLES, AuthError, Authority, new_secret
from server.backends import (
    Backends,
    BackendUnavailable,
    RoomExists,
    RoomNotFound,
    RoomRecord,
    Store,
    open_backends,
)
from server.config import Settings, base_url
from server.hub import Hub
from server.hub.hub import MODERATION_ACTIONS
from server.interactions import checkin as checkin_rules
from server.interactions.base import InteractionError
from server.metrics import Metrics
from server.pages import Pages
from server.room_settings import SettingError, check_settings

MAX_BODY_BYTES = 65536
DEFAULT_TOKEN_TTL_S = 24 * 3600
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "malformed", f"the body must be a JSON object, got {type(data).__name__}"
        )
    return data


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _check_settings(value: Any) -> dict[str, Any]:
    try:
        return check_settings(value)
    except SettingError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None


def _check_title(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 200:
        raise ApiError(400, "invalid_field", "title must be a string of 1 to 200 characters")
    return value.strip()


class Api:
    """REST handlers under /api/v1 (PROTOCOL.md, "REST API")."""

    def __init__(self, settings: Settings, store: Store, authority: Authority, hub: Hub) -> None:
        self.settings = settings
        self.store = store
        self.authority = authority
        self.hub = hub

    def _require_admin(self, request: Request) -> None:
        token = _bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer …'")
        if not self.authority.is_admin(token):
            raise ApiError(401, "unauthorized", "the admin token is wrong")

    def _caller_role(self, request: Request, room_id: str) -> str:
        """'admin', or the role of a valid room token for this room."""
        token = _bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send a token as 'Authorization: Bearer …'")
        if self.authority.is_admin(token):
            return "admin"
        try:
            return self.authority.verify(token, room_id).role
        except AuthError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None

    async def _room(self, room_id: str) -> RoomRecord:
        try:
            return await self.store.get_room(room_id)
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None

    async def list_rooms(self, request: Request) -> Response:
        self._require_admin(request)
        rooms = await self.store.list_rooms()
        return _json({"rooms": [self._room_view(r) for r in rooms]})

    def _room_view(self, record: RoomRecord) -> dict[str, Any]:
        view = record.public()
        live = self.hub.rooms.get(record.id)
        view["online"] = live.viewers if live is not None else 0
        return view

    async def create_room(self, request: Request) -> Response:
        self._require_admin(request)
        body = await _body(request)
        room_id = body.get("id")
        if room_id is None:
            room_id = secrets.token_urlsafe(6).replace("_", "x").replace("-", "x")
        if not isinstance(room_id, str) or not ROOM_ID_RE.match(room_id):
            raise ApiError(400, "invalid_field", f"id must match {ROOM_ID_RE.pattern}")
        title = _check_title(body.get("title"), room_id)
        settings = _check_settings(body.get("settings"))
        record = RoomRecord(room_id, title, time.time(), 1, settings)
        try:
            await self.store.create_room(record)
        except RoomExists:
            raise ApiError(409, "room_exists", f"room {room_id!r} exists already") from None
        return _json(self._room_view(record), 201)

    async def get_room(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = self._caller_role(request, room_id)
        if role not in ("admin", *STAFF_ROLES):
            raise ApiError(403, "forbidden", f"the {role} role may not read room settings")
        return _json(self._room_view(await self._room(room_id)))

    async def update_room(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = self._caller_role(request, room_id)
        if role not in ("admin", "host"):
            raise ApiError(403, "forbidden", f"the {role} role may not change a room")
        body = await _body(request)
        unknown = set(body) - {"title", "settings"}
        if unknown:
            raise ApiError(
                400, "invalid_field", f"unknown fields {sorted(unknown)}; send title, settings"
            )
        await self._room(room_id)
        title = _check_title(body.get("title"), "") or None
        settings = _check_settings(body.get("settings"))
        record = await self.store.update_room(room_id, title=title, settings=settings)
        self.hub.room_updated(record)
        return _json(self._room_view(record))

    async def delete_room(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = self._caller_role(request, room_id)
        if role != "admin":
            raise ApiError(403, "forbidden", f"only the admin may delete a room, not a {role}")
        try:
            await self.store.delete_room(room_id)
        except RoomNotFound:
            raise ApiError(404, "room_not_found", f"no room {room_id!r}") from None
        self.hub.room_deleted(room_id)
        return Response(status_code=204)

    async def mint_token(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        caller = self._caller_role(request, room_id)
        body = await _body(request)
        role = body.get("role")
        if role not in ROLES:
            raise ApiError(400, "invalid_field", f"role must be one of {', '.join(ROLES)}")
        if caller != "admin" and not (caller == "host" and role != "host"):
            raise ApiError(403, "forbidden", f"the {caller} role may not mint {role} tokens")
        await self._room(room_id)
        user_id = body.get("user_id") or f"{role}-{secrets.token_hex(4)}"
        if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
            raise ApiError(400, "invalid_field", f"user_id must match {USER_ID_RE.pattern}")
        name = body.get("name") or user_id
        if not isinstance(name, str) or len(name) > 32:
            raise ApiError(400, "invalid_field", "name must be a string of at most 32 characters")
        ttl = body.get("ttl_s", DEFAULT_TOKEN_TTL_S)
        if type(ttl) is not int or not 1 <= ttl <= 400 * 24 * 3600:
            raise ApiError(
                400, "invalid_field", "ttl_s must be an integer of seconds, 1 to 34560000"
            )
        token, expires = self.authority.mint(room_id, role, user_id, name, ttl)
        # Only the hash is kept: who minted which token, without being able to use it.
        digest = hashlib.sha256(token.encode()).hexdigest()
        await self.store.remember_token(
            room_id, digest, {"role": role, "user_id": user_id, "by": caller}, ttl
        )
        return _json(
            {
                "token": token,
                "room": room_id,
                "role": role,
                "user_id": user_id,
                "name": name,
                "expires_at": expires,
            },
            201,
        )


# How an interaction's refusal maps to an HTTP status (the code stays in the body).
INTERACTION_STATUS = {
    "unknown_target": 404,
    "illegal_transition": 409,
    "not_open": 409,
    "no_entrants": 409,
}


class Activities:
    """REST handlers for interactions (PROTOCOL.md, "Interactions"; protocol/openapi.yaml)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.hub = api.hub

    async def _staff(self, request: Request) -> tuple[str, str]:
        room_id = request.path_params["room_id"]
        role = self.api._caller_role(request, room_id)
        if role not in ("admin", *STAFF_ROLES):
            raise ApiError(403, "forbidden", f"the {role} role may not run host operations")
        await self.api._room(room_id)
        return room_id, role

    async def create(self, request: Request) -> Response:
        room_id, _ = await self._staff(request)
        body = await _body(request)
        result = await self.hub.host_operation(room_id, "create", body)
        return _json(result, 201)

    async def act(self, request: Request) -> Response:
        room_id, _ = await self._staff(request)
        body = await _body(request)
        action = body.get("action")
        if not isinstance(action, str) or action == "create":
            raise ApiError(400, "invalid_field", "send an 'action' (open, close, reveal, …)")
        fields = {**body, "interaction": request.path_params["interaction_id"]}
        return _json(await self.hub.host_operation(room_id, action, fields))

    async def list(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = self.api._caller_role(request, room_id)
        await self.api._room(room_id)
        activities = self.hub.activities
        private = role in ("admin", *STAFF_ROLES)
        found = await activities.definitions(room_id)
        views = [
            await activities.view(room_id, iid, d, private=private)
            for iid, d in sorted(found.items(), key=lambda item: item[1].created_at)
        ]
        return _json({"interactions": views})

    async def get(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        role = self.api._caller_role(request, room_id)
        await self.api._room(room_id)
        iid = request.path_params["interaction_id"]
        definition = await self.hub.activities.definition(room_id, iid)
        private = role in ("admin", *STAFF_ROLES)
        return _json(await self.hub.activities.view(room_id, iid, definition, private=private))

    async def audit(self, request: Request) -> Response:
        room_id = request.path_params["room_id"]
        self.api._caller_role(request, room_id)  # any valid token of the room
        await self.api._room(room_id)
        record = await self.hub.activities.audit(room_id, request.path_params["interaction_id"])
        return _json(record)

    async def moderate(self, request: Request) -> Response:
        """POST: retract, mute, unmute, ban, unban; GET: who is muted or banned."""
        room_id, _ = await self._staff(request)
        if request.method == "GET":
            return _json(await self.hub.moderation(room_id))
        body = await _body(request)
        action = body.get("action")
        if action not in MODERATION_ACTIONS:
            raise ApiError(
                400, "invalid_field", f"action must be one of {', '.join(MODERATION_ACTIONS)}"
            )
        return _json(await self.hub.moderate(room_id, action, body))

    async def stats(self, request: Request) -> Response:
        room_id, _ = await self._staff(request)
        return _json(await self.hub.room_stats(room_id))

    async def export(self, request: Request) -> Response:
        room_id, _ = await self._staff(request)
        rows = await self.hub.activities.export(room_id, request.path_params["interaction_id"])
        if request.query_params.get("format") == "csv":
            return Response(checkin_rules.to_csv(rows), media_type="text/csv; charset=utf-8")
        return _json({"rows": rows})


def create_app(
    settings: Settings, *, backends: Backends | None = None, demo: bool = False
) -> Starlette:
    """The node's application. ``demo``: at start, make the demo room and print the
    URLs of its pages (``hudong serve --demo``)."""
    metrics = Metrics()
    if backends is None:
        url = settings.server.redis_url or "memory://"
        backends = open_backends(url, prefix=settings.server.redis_prefix)
    store = backends.store
    admin_token = settings.server.admin_token or new_secret()
    authority = Authority(admin_token, settings.server.secret or new_secret())
    hub = Hub(settings, backends, authority, metrics)
    api = Api(settings, store, authority, hub)
    activities = Activities(api)
    pages = Pages(public_url=settings.server.public_url, assets_dir=settings.server.assets_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await hub.start()
        if demo:
            room = await demo_room.seed(store, hub, authority, time.time())
            app.state.demo = room
            print(demo_room.banner(room, base_url(settings)), flush=True)
        try:
            yield {"hub": hub}
        finally:
            await hub.stop()
            await store.close()

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> Response:
        ready = hub.ready
        checks = {
            "hub": hub.admission_refusal() or "ok",
            "store": "ok" if hub.store_ok else "unreachable",
        }
        return _json({"ready": ready, "checks": checks}, 200 if ready else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def degrade(request: Request) -> Response:
        """The node's degrade level and signals (GET); the admin's floor (PUT)."""
        api._require_admin(request)
        if request.method == "PUT":
            body = await _body(request)
            floor = body.get("floor")
            if type(floor) is not int or not 0 <= floor <= 3:
                raise ApiError(400, "invalid_field", "floor must be 0, 1, 2 or 3")
            hub.floor = floor
            hub.set_level(hub.degrade.level, reason=f"admin floor {floor}")
        signals = hub.signals
        return _json(
            {
                "level": int(hub.level),
                "name": hub.level.name.lower(),
                "floor": hub.floor,
                "automatic": int(hub.degrade.level),
                "signals": {
                    "loop_lag_s": round(signals.loop_lag_s, 4),
                    "tick_ratio": round(signals.tick_ratio, 3),
                    "buffered_bytes": signals.buffered_bytes,
                    "ingest_per_s": round(signals.ingest_per_s, 1),
                    "store_latency_s": round(signals.store_latency_s, 4),
                    "store_ok": signals.store_ok,
                },
            }
        )

    async def index(request: Request) -> Response:
        return _json(
            {
                "name": "hudong",
                "version": __version__,
                "websocket": "/ws",
                "subprotocols": ["hudong.v1.json", "hudong.v1.msgpack"],
                "api": "/api/v1",
                "health": "/healthz",
                "ready": "/readyz",
                "metrics": "/metrics",
                "pages": {
                    "console": "/console",
                    "live": "/live/{room}",
                    "overlay": "/overlay/{room}",
                    "wall": "/wall/{room}",
                },
            }
        )

    async def unavailable(request: Request, exc: Exception) -> Response:
        metrics.store_errors.inc()
        return JSONResponse(
            {
                "error": {
                    "code": "store_unavailable",
                    "message": "the store cannot be reached; nothing was changed",
                }
            },
            503,
            headers={"Retry-After": "1"},
        )

    async def interaction_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InteractionError)
        body = {"code": exc.code, "message": exc.message, **exc.extra}
        return JSONResponse({"error": body}, INTERACTION_STATUS.get(exc.code, 400))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(getattr(exc, "detail", exc))}}, status
        )

    from starlette.exceptions import HTTPException

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        Route("/api/v1/degrade", degrade, methods=["GET", "PUT"]),
        Route("/console", pages.console, methods=["GET"]),
        Route("/live/{room_id}", pages.live, methods=["GET"]),
        Route("/overlay/{room_id}", pages.overlay, methods=["GET"]),
        Route("/wall/{room_id}", pages.wall, methods=["GET"]),
        Route("/qr/{room_id}.svg", pages.qr, methods=["GET"]),
        Route("/static/{path:path}", pages.static, methods=["GET"]),
        Route("/assets/{path:path}", pages.asset, methods=["GET"]),
        Route("/api/v1/rooms", api.list_rooms, methods=["GET"]),
        Route("/api/v1/rooms", api.create_room, methods=["POST"]),
        Route("/api/v1/rooms/{room_id}", api.get_room, methods=["GET"]),
        Route("/api/v1/rooms/{room_id}", api.update_room, methods=["PATCH"]),
        Route("/api/v1/rooms/{room_id}", api.delete_room, methods=["DELETE"]),
        Route("/api/v1/rooms/{room_id}/tokens", api.mint_token, methods=["POST"]),
        Route("/api/v1/rooms/{room_id}/moderation", activities.moderate, methods=["GET", "POST"]),
        Route("/api/v1/rooms/{room_id}/stats", activities.stats, methods=["GET"]),
        Route("/api/v1/rooms/{room_id}/interactions", activities.list, methods=["GET"]),
        Route("/api/v1/rooms/{room_id}/interactions", activities.create, methods=["POST"]),
        Route(
            "/api/v1/rooms/{room_id}/interactions/{interaction_id}", activities.get, methods=["GET"]
        ),
        Route(
            "/api/v1/rooms/{room_id}/interactions/{interaction_id}/actions",
            activities.act,
            methods=["POST"],
        ),
        Route(
            "/api/v1/rooms/{room_id}/interactions/{interaction_id}/audit",
            activities.audit,
            methods=["GET"],
        ),
        Route(
            "/api/v1/rooms/{room_id}/interactions/{interaction_id}/export",
            activities.export,
            methods=["GET"],
        ),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            BackendUnavailable: unavailable,
            InteractionError: interaction_error,
        },
    )
    app.state.hub = hub
    app.state.pages = pages
    app.state.metrics = metrics
    app.state.admin_token = admin_token
    app.state.authority = authority
    return app
