"""The Starlette application: routes only. ``/ws`` is served by the hub.

Built by :func:`create_app` from one :class:`~server.config.Settings`; nothing is
created at import time. The parts: the store and broker (``server/backends``), the
kinds (``server/interactions``, through the registry), the room service
(``server/rooms``), the hub (``server/hub``), the REST handlers (``server/api``) and
the pages (``server/pages.py``). The lifespan starts the hub and yields it as lifespan
state, where the WebSocket protocol class (:class:`server.hub.Connection`) finds it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.messages import CommandError
from server import demo as demo_room
from server.api.http import ApiError, Callers, refused, unavailable
from server.api.interactions import InteractionsApi
from server.api.limits import HeavyRequests
from server.api.node import NodeApi
from server.api.rooms import RoomsApi
from server.auth import Authority, new_secret
from server.backends import Backends, BackendUnavailable, open_backends
from server.config import Settings, base_url, node_name
from server.hub import Hub
from server.metrics import Metrics
from server.moderation.screen import TextFilter, load_blocklist
from server.pages import Pages
from server.rooms.plugins import registry_with
from server.rooms.service import RoomService


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
    registry = registry_with(settings.server.kinds)
    text_filter = TextFilter(
        load_blocklist(settings.limits.blocklist_path),
        duplicate_window_s=settings.limits.duplicate_window_s,
        count=lambda action, reason: metrics.text_decisions.labels(action, reason).inc(),
    )
    rooms = RoomService(
        store,
        registry,
        authority,
        node_id=node_name(settings),
        shared=backends.shared,
        text_filter=text_filter,
    )
    hub = Hub(settings, backends, rooms, metrics)
    rooms.bind(hub)
    callers = Callers(authority)
    rooms_api = RoomsApi(store, authority, rooms, hub.online)
    interactions = InteractionsApi(rooms_api, rooms, hub.level_of)
    node = NodeApi(hub, metrics, callers)
    pages = Pages(
        public_url=settings.server.public_url,
        assets_dir=settings.server.assets_dir,
        kinds=registry,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await hub.start()
        if demo:
            room = await demo_room.seed(store, rooms, authority, time.time())
            app.state.demo = room
            print(demo_room.banner(room, base_url(settings)), flush=True)
        try:
            yield {"hub": hub}
        finally:
            await hub.stop()
            await store.close()

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, CommandError)
        if exc.code == "store_unavailable":
            metrics.store_errors.inc()
        return refused(exc)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        metrics.store_errors.inc()
        return unavailable()

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(getattr(exc, "detail", exc))}}, status
        )

    heavy = HeavyRequests(settings.limits.heavy_requests_per_s, settings.limits.heavy_request_burst)
    room = "/api/v1/rooms/{room_id}"
    interaction = f"{room}/interactions/{{interaction_id}}"
    routes = [
        Route("/", node.index),
        Route("/healthz", node.healthz),
        Route("/readyz", node.readyz),
        Route("/metrics", node.metrics_text),
        Route("/api/v1/degrade", node.degrade, methods=["GET", "PUT"]),
        Route("/console", pages.console, methods=["GET"]),
        Route("/live/{room_id}", pages.live, methods=["GET"]),
        Route("/overlay/{room_id}", pages.overlay, methods=["GET"]),
        Route("/wall/{room_id}", pages.wall, methods=["GET"]),
        Route("/qr/{room_id}.svg", heavy.limited(pages.qr), methods=["GET"]),
        Route("/static/kinds/{name}.js", pages.kind_module, methods=["GET"]),
        Route("/static/{path:path}", pages.static, methods=["GET"]),
        Route("/assets/{path:path}", pages.asset, methods=["GET"]),
        Route("/api/v1/rooms", rooms_api.list, methods=["GET"]),
        Route("/api/v1/rooms", rooms_api.create, methods=["POST"]),
        Route(room, rooms_api.get, methods=["GET"]),
        Route(room, rooms_api.update, methods=["PATCH"]),
        Route(room, rooms_api.delete, methods=["DELETE"]),
        Route(f"{room}/tokens", rooms_api.mint_token, methods=["POST"]),
        Route(f"{room}/moderation", interactions.moderate, methods=["GET", "POST"]),
        Route(f"{room}/blocklist", interactions.blocklist, methods=["GET", "PUT"]),
        Route(f"{room}/stats", interactions.stats, methods=["GET"]),
        Route(f"{room}/report", heavy.limited(interactions.report), methods=["GET"]),
        Route(f"{room}/interactions", interactions.list, methods=["GET"]),
        Route(f"{room}/interactions", interactions.create, methods=["POST"]),
        Route(interaction, interactions.get, methods=["GET"]),
        Route(f"{interaction}/actions", interactions.act, methods=["POST"]),
        Route(f"{interaction}/audit", heavy.limited(interactions.audit), methods=["GET"]),
        Route(f"{interaction}/mine", interactions.mine, methods=["GET"]),
        Route(f"{interaction}/export", heavy.limited(interactions.export), methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: on_api_error,
            CommandError: on_refused,
            HTTPException: on_http_error,
            BackendUnavailable: on_unavailable,
        },
    )
    app.state.hub = hub
    app.state.rooms = rooms
    app.state.pages = pages
    app.state.heavy = heavy
    app.state.metrics = metrics
    app.state.admin_token = admin_token
    app.state.authority = authority
    return app
