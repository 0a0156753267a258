"""REST handlers for interactions, moderation and live counts (PROTOCOL.md,
"Interactions", "Moderation"; protocol/openapi.yaml). Each hands the room service
what it was asked; no rule of any kind lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server import report_page
from server.api.http import ApiError, json_response, read_body
from server.api.rooms import RoomsApi
from server.auth import STAFF_ROLES
from server.hub.degrade import DegradeLevel
from server.interactions.kind import Audience, to_csv
from server.rooms.moderation import ACTIONS as MODERATION_ACTIONS
from server.rooms.refusals import refusals
from server.rooms.service import RoomService
from server.rooms.top_words import MAX_TOP


def report_format(request: Request) -> tuple[bool, str]:
    """Whether the report is asked for as HTML (``?format=html``, or a browser's Accept
    without a format), and in which language (``?lang=zh|en``, default zh)."""
    wanted = request.query_params.get("format")
    if wanted not in (None, "json", "html"):
        raise ApiError(400, "invalid_field", "format must be json or html")
    lang = request.query_params.get("lang", "zh")
    if lang not in report_page.LANGS:
        raise ApiError(400, "invalid_field", f"lang must be one of {', '.join(report_page.LANGS)}")
    accept = request.headers.get("accept", "")
    return wanted == "html" or (wanted is None and "text/html" in accept), lang


def _audience(role: str) -> Audience:
    """The views a REST caller gets: host views for staff and the admin."""
    if role in ("admin", *STAFF_ROLES):
        return Audience.STAFF
    return Audience.SCREEN if role == "screen" else Audience.PUBLIC


class InteractionsApi:
    """Create and drive interactions, read their views, audits and exports; moderate;
    the room's live counts."""

    def __init__(
        self, rooms_api: RoomsApi, rooms: RoomService, level: Callable[[str], DegradeLevel]
    ) -> None:
        self.api = rooms_api
        self.callers = rooms_api.callers
        self.rooms = rooms
        self.level = level

    async def _staff(self, request: Request, what: str = "run host operations") -> str:
        room_id: str = request.path_params["room_id"]
        await self.callers.staff(request, room_id, what)
        await self.api.room(room_id)
        return room_id

    async def _reader(self, request: Request) -> tuple[str, str]:
        room_id: str = request.path_params["room_id"]
        role = await self.callers.role(request, room_id)  # any valid token of the room
        await self.api.room(room_id)
        return room_id, role

    async def create(self, request: Request) -> Response:
        room_id = await self._staff(request)
        body = await read_body(request)
        by = self.callers.who(request, room_id)
        return json_response(await self.rooms.host(room_id, "create", body, by=by), 201)

    async def act(self, request: Request) -> Response:
        room_id = await self._staff(request)
        body = await read_body(request)
        action = body.get("action")
        if not isinstance(action, str) or action == "create":
            raise ApiError(400, "invalid_field", "send an 'action' (open, close, reveal, …)")
        fields = {**body, "interaction": request.path_params["interaction_id"]}
        by = self.callers.who(request, room_id)
        return json_response(await self.rooms.host(room_id, action, fields, by=by))

    async def list(self, request: Request) -> Response:
        room_id, role = await self._reader(request)
        views = await self.rooms.interactions(room_id, _audience(role))
        return json_response({"interactions": views})

    async def get(self, request: Request) -> Response:
        room_id, role = await self._reader(request)
        iid = request.path_params["interaction_id"]
        return json_response(await self.rooms.interaction(room_id, iid, _audience(role)))

    async def audit(self, request: Request) -> Response:
        """A draw's audit record: whole for staff, entrant ids as digests for others."""
        room_id, role = await self._reader(request)
        iid = request.path_params["interaction_id"]
        return json_response(await self.rooms.audit(room_id, iid, _audience(role)))

    async def mine(self, request: Request) -> Response:
        """What only the caller may see of an interaction (a draw winner's claim code)."""
        room_id: str = request.path_params["room_id"]
        user = await self.callers.user(request, room_id)
        await self.api.room(room_id)
        iid = request.path_params["interaction_id"]
        return json_response(await self.rooms.own_view(room_id, iid, user))

    async def export(self, request: Request) -> Response:
        """What an interaction collected (viewers' ids and names): the audit log keeps
        who took it."""
        room_id = await self._staff(request)
        iid = request.path_params["interaction_id"]
        rows = await self.rooms.export(room_id, iid)
        by, csv = self.callers.who(request, room_id), request.query_params.get("format") == "csv"
        detail = {"rows": len(rows), "format": "csv" if csv else "json"}
        target = {"interaction": iid}
        await self.rooms.audit_log.record(room_id, by, "interaction.export", target, "ok", detail)
        if csv:
            return Response(to_csv(rows), media_type="text/csv; charset=utf-8")
        return json_response({"rows": rows})

    async def report(self, request: Request) -> Response:
        """The event report: each interaction's section, as its kind writes it, and the
        moderation summary; as JSON, or as one self-contained HTML page (report_page.py)
        with every interaction's export in it (so the audit log records who took it)."""
        room_id = await self._staff(request, "read the report")
        html, lang = report_format(request)
        report = await self.rooms.report(room_id)
        entries = await self.rooms.audit_log.entries(room_id)
        listing = await self.rooms.moderation.listing(room_id)
        report["moderation"] = report_page.moderation_summary(entries, listing)
        series = await self.rooms.counts.timeline.series(room_id)
        report["timeline"] = report_page.timeline_points(series["minutes"])
        if not html:
            return json_response(report)
        exports, audited = {}, set()
        for s in report["interactions"]:
            exports[s["id"]] = await self.rooms.export(room_id, s["id"])
            kind = self.rooms.registry.get(s["kind"])
            if kind is not None and kind.audited:
                audited.add(s["id"])
        by = self.callers.who(request, room_id)
        detail = {"format": "html", "exports": len(exports)}
        await self.rooms.audit_log.record(
            room_id, by, "room.report", {"room": room_id}, "ok", detail
        )
        page = report_page.render(report, exports, audited, lang)
        return Response(page, media_type="text/html; charset=utf-8")

    async def timeline(self, request: Request) -> Response:
        """The room's per-minute history over every node (server/rooms/timeline.py)."""
        room_id = await self._staff(request, "read the timeline")
        async with refusals():
            return json_response(await self.rooms.counts.history(room_id))

    async def top_words(self, request: Request) -> Response:
        """The room's most frequent danmaku words over the event, over every node
        (server/rooms/top_words.py); ``?n=`` of them, 1 to 100 (default 20)."""
        room_id = await self._staff(request, "read the top words")
        raw = request.query_params.get("n", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
            raise ApiError(400, "invalid_field", f"n must be a whole number from 1 to {MAX_TOP}")
        async with refusals():
            return json_response(await self.rooms.counts.words.top(room_id, int(raw)))

    async def moderate(self, request: Request) -> Response:
        """POST: retract, mute, unmute, ban, unban; GET: who is muted or banned."""
        room_id = await self._staff(request)
        if request.method == "GET":
            return json_response(await self.rooms.moderation.listing(room_id))
        body = await read_body(request)
        action = body.get("action")
        if action not in MODERATION_ACTIONS:
            raise ApiError(
                400, "invalid_field", f"action must be one of {', '.join(MODERATION_ACTIONS)}"
            )
        by = self.callers.who(request, room_id)
        return json_response(await self.rooms.host(room_id, action, body, by=by))

    async def blocklist(self, request: Request) -> Response:
        """GET: the room's own blocked words; PUT ``{"words": [{word, action}]}``: replace
        them (PROTOCOL.md, "Text filter"). Private to staff, never a room setting."""
        room_id = await self._staff(request, "read or set the room's blocked words")
        async with refusals():
            if request.method == "GET":
                return json_response({"words": await self.rooms.text.load(room_id)})
            body = await read_body(request)
            words = await self.rooms.text.set_words(room_id, body.get("words"))
        by = self.callers.who(request, room_id)
        detail = {"words": len(words)}  # how many, never which: the list stays private
        await self.rooms.audit_log.record(
            room_id, by, "room.blocklist", {"room": room_id}, "ok", detail
        )
        return json_response({"words": words})

    async def stats(self, request: Request) -> Response:
        room_id = await self._staff(request)
        counts: dict[str, Any] = await self.rooms.stats(room_id)
        level = self.level(room_id)
        return json_response(
            {"room": room_id, **counts, "degrade": int(level), "degrade_name": level.name.lower()}
        )
