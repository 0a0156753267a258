"""REST handlers about the node itself: health, readiness, metrics, degrade level."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from server import __version__
from server.api.http import ApiError, Callers, json_response, read_body
from server.hub import Hub
from server.metrics import Metrics
from server.rooms.audit import AuditLog


class NodeApi:
    """What an operator and a load balancer ask a node: is it alive, is it ready, its
    metrics, and its degrade level (which the admin can floor)."""

    def __init__(self, hub: Hub, metrics: Metrics, callers: Callers, audit: AuditLog) -> None:
        self.hub = hub
        self.metrics = metrics
        self.callers = callers
        self.audit = audit

    async def index(self, request: Request) -> Response:
        return json_response(
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

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    async def readyz(self, request: Request) -> Response:
        hub = self.hub
        ready = hub.ready
        checks = {
            "hub": hub.admission_refusal() or "ok",
            "store": "ok" if hub.governor.store_ok else "unreachable",
        }
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    async def metrics_text(self, request: Request) -> Response:
        """The Prometheus metrics; with ``server.metrics_token`` set, only for a caller
        that sends it as its bearer token."""
        token = self.hub.settings.server.metrics_token
        if token:
            self.callers.require_token(request, token, "server.metrics_token")
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def degrade(self, request: Request) -> Response:
        """The node's degrade level and signals (GET); the admin's floor (PUT)."""
        self.callers.require_admin(request)
        hub = self.hub
        if request.method == "PUT":
            body = await read_body(request)
            floor = body.get("floor")
            if type(floor) is not int or not 0 <= floor <= 3:
                raise ApiError(400, "invalid_field", "floor must be 0, 1, 2 or 3")
            hub.set_floor(floor)
            self.audit.node_action("admin", "node.degrade_floor", {"floor": floor})
        governor = hub.governor
        signals = governor.signals
        return json_response(
            {
                "level": int(hub.level),
                "name": hub.level.name.lower(),
                "floor": governor.floor,
                "automatic": int(governor.controller.level),
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
