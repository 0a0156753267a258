"""The Starlette application: routes only. ``/ws`` is served by the hub.

Built by :func:`create_app` from one :class:`~server.config.Settings`; nothing is
created at import time. The parts: the store and broker (``server/backends``), the
kinds (``server/interactions``, through the registry), the room service
(``server/rooms``), the hub (``server/hub``), the REST handlers (``server/api``) and
the pages (``server/pages.py``). The lifespan starts the hub and yields it as lifespan
state, where the WebSocket protocol class (:class:`server.hub.Connection`) finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.messages import CommandError
from server import demo as demo_room
from server.api.alerts import AlertsApi
from server.api.audit import AuditApi
from server.api.bodies import BodyLimit
from server.api.bridges import BridgesApi
from server.api.http import ApiError, Callers, refused, unavailable
from server.api.interactions import InteractionsApi
from server.api.limits import FailedLogins, HeavyRequests
from server.api.node import NodeApi
from server.api.privacy import PrivacyApi
from server.api.rooms import RoomsApi
from server.auth import Authority, new_secret
from server.backends import Backends, BackendUnavailable, open_backends
from server.backends.base import RoomNotFound
from server.bridges.failover import Failover
from server.bridges.runner import Bridges
from server.config import Settings, base_url, node_name
from server.hub import Hub
from server.metrics import Metrics
from server.moderation.screen import TextFilter, load_blocklist
from server.origins import Origins
from server.pages import Pages
from server.rooms.plugins import registry_with
from server.rooms.privacy import ViewerPrivacy
from server.rooms.retention import RetentionPass
from server.rooms.service import RoomService


def create_app(
    settings: Settings, *, backends: Backends | None = None, demo: bool = False
) -> Starlette:
    """The node's application. ``demo``: at start, make the demo room and print the
    URLs of its pages (``hudong serve --demo``)."""
    by_room = settings.server.metrics_room_labels  # with a cap on rooms (metrics.py)
    metrics = Metrics(room_labels=settings.server.metrics_room_labels_max if by_room else 0)
    if backends is None:
        url = settings.server.redis_url or "memory://"
        backends = open_backends(url, prefix=settings.server.redis_prefix)
    store = backends.store
    admin_token = settings.server.admin_token or new_secret()
    authority = Authority(
        admin_token,
        settings.server.secret or new_secret(),
        pseudonymous=settings.server.pseudonymous_ids,
    )
    registry = registry_with(settings.server.kinds)
    text_filter = TextFilter(
        load_blocklist(settings.limits.blocklist_path),
        duplicate_window_s=settings.limits.duplicate_window_s,
        count=metrics.text_decision,
    )
    rooms = RoomService(
        store,
        registry,
        authority,
        node_id=node_name(settings),
        shared=backends.shared,
        text_filter=text_filter,
        limits=settings.limits,
    )
    rooms.audit_log.keep = settings.limits.audit_log_keep
    hub = Hub(settings, backends, rooms, metrics)
    rooms.bind(hub)
    rooms.alerts.count_in(metrics)
    rooms.contributed = metrics.contributed_to(kind.name for kind in registry)
    callers = Callers(authority, FailedLogins(settings.limits.failed_logins_allowed))
    rooms_api = RoomsApi(store, authority, rooms, hub.online, callers, settings.limits)
    interactions = InteractionsApi(rooms_api, rooms, hub.level_of)
    rooms.counts.timeline.level = hub.level_of  # the degrade level of each minute
    alerts = AlertsApi(rooms_api, rooms)
    audit = AuditApi(rooms_api, rooms)
    node = NodeApi(hub, metrics, callers, rooms.audit_log)
    # Platform chat bridges run in the node (server/bridges/runner.py).
    bridges = Bridges(settings, store, rooms, hub, authority, metrics, node_name(settings))
    # Only nodes on Redis share bridges; one on memory or its locked data directory runs all.
    bridges.alone = not backends.url.startswith(("redis://", "rediss://", "redis+cluster://"))
    bridges.failover = Failover(bridges)  # leases: a bridge outlives its node
    bridges_api = BridgesApi(rooms_api, bridges)
    hub.bridged = bridges.remote  # ``bridge`` commands of ``hudong bridge`` processes

    async def room_exists(room_id: str) -> bool:
        try:
            await store.get_room(room_id)
        except RoomNotFound:
            return False
        return True

    privacy = PrivacyApi(ViewerPrivacy(store, rooms), callers)
    retention = RetentionPass(store, rooms)
    pages = Pages(
        public_url=base_url(settings),
        assets_dir=settings.server.assets_dir,
        kinds=registry,
        room_exists=room_exists,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await hub.start()
        await bridges.start()
        pruning = asyncio.get_running_loop().create_task(retention.run(), name="hudong-retention")
        if demo:
            room = await demo_room.seed(store, rooms, authority, time.time())
            app.state.demo = room
            print(demo_room.banner(room, base_url(settings)), flush=True)
        try:
            yield {"hub": hub}
        finally:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
            await bridges.stop()
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
        body = {"error": {"code": exc.code, "message": exc.message}}
        return JSONResponse(body, exc.status, headers=exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(getattr(exc, "detail", exc))}}, status
        )

    limits = settings.limits
    heavy = HeavyRequests(limits.heavy_requests_per_s, limits.heavy_request_burst)
    # Every route that needs no token, per client address (issue 15).
    public_requests = HeavyRequests(limits.public_requests_per_s, limits.public_request_burst)
    public = public_requests.limited
    room = "/api/v1/rooms/{room_id}"
    interaction = f"{room}/interactions/{{interaction_id}}"
    routes = [
        Route("/", public(node.index)),
        Route("/healthz", public(node.healthz)),
        Route("/readyz", public(node.readyz)),
        Route("/metrics", public(node.metrics_text)),
        Route("/api/v1/degrade", node.degrade, methods=["GET", "PUT"]),
        Route("/console", public(pages.console), methods=["GET"]),
        Route("/cockpit", public(pages.cockpit), methods=["GET"]),
        Route("/live/{room_id}", public(pages.live), methods=["GET"]),
        Route("/overlay/{room_id}", public(pages.overlay), methods=["GET"]),
        Route("/wall/{room_id}", public(pages.wall), methods=["GET"]),
        Route("/qr/{room_id}.svg", public(heavy.limited(pages.qr)), methods=["GET"]),
        Route("/static/kinds/{name}.js", public(pages.kind_module), methods=["GET"]),
        Route("/static/{path:path}", public(pages.static), methods=["GET"]),
        Route("/assets/{path:path}", public(pages.asset), methods=["GET"]),
        Route("/api/v1/rooms", rooms_api.list, methods=["GET"]),
        Route("/api/v1/rooms", rooms_api.create, methods=["POST"]),
        Route(room, rooms_api.get, methods=["GET"]),
        Route(room, rooms_api.update, methods=["PATCH"]),
        Route(room, rooms_api.delete, methods=["DELETE"]),
        Route(f"{room}/tokens", rooms_api.mint_token, methods=["POST"]),
        Route(f"{room}/revocations", rooms_api.revocations, methods=["GET", "POST"]),
        Route("/api/v1/viewers/{user_id}", privacy.export, methods=["GET"]),
        Route("/api/v1/viewers/{user_id}", privacy.erase, methods=["DELETE"]),
        Route(f"{room}/viewers/{{user_id}}", privacy.export, methods=["GET"]),
        Route(f"{room}/viewers/{{user_id}}", privacy.erase, methods=["DELETE"]),
        Route(f"{room}/moderation", interactions.moderate, methods=["GET", "POST"]),
        Route(f"{room}/blocklist", interactions.blocklist, methods=["GET", "PUT"]),
        Route(f"{room}/stats", interactions.stats, methods=["GET"]),
        Route(f"{room}/timeline", interactions.timeline, methods=["GET"]),
        Route(f"{room}/top-words", interactions.top_words, methods=["GET"]),
        Route(f"{room}/alerts", alerts.listing, methods=["GET"]),
        Route(f"{room}/alerts/watchlists", alerts.watchlists, methods=["PUT"]),
        Route(f"{room}/alerts/{{alert_id}}/ack", alerts.acknowledge, methods=["POST"]),
        Route(f"{room}/report", heavy.limited(interactions.report), methods=["GET"]),
        Route(f"{room}/audit-log", heavy.limited(audit.log), methods=["GET"]),
        Route(f"{room}/bridges", bridges_api.listing, methods=["GET"]),
        Route(f"{room}/bridges", bridges_api.add, methods=["POST"]),
        Route(f"{room}/bridges/webhook/{{channel}}", public(bridges_api.webhook), methods=["POST"]),
        Route(f"{room}/bridges/{{platform}}/{{channel}}", bridges_api.remove, methods=["DELETE"]),
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
        middleware=[
            *Origins(settings).cors(),
            Middleware(BodyLimit, limit=limits.max_body_bytes),
        ],
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
    app.state.public_requests = public_requests
    app.state.callers = callers  # its count of wrong tokens, for tests/test_openapi.py
    app.state.metrics = metrics
    app.state.admin_token = admin_token
    app.state.authority = authority
    app.state.retention = retention
    app.state.bridges = bridges
    return app
