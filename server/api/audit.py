"""``GET /api/v1/rooms/{id}/audit-log``: the room's audit log for its hosts, moderators
and the admin, filtered, a page at a time, or exported whole as CSV or JSON
(PROTOCOL.md, "Audit log"; server/rooms/audit.py keeps it).

The name is ``audit-log``, not ``audit``: ``…/interactions/{iid}/audit`` is a draw's
audit record, a different thing that viewers may read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.api.http import ApiError, json_response
from server.api.rooms import RoomsApi
from server.interactions.kind import to_csv
from server.rooms.audit import PAGE_DEFAULT, PAGE_MAX, AuditQuery, csv_rows, page
from server.rooms.service import RoomService

QUERY_PARAMS = ("actor", "action", "target", "since", "until", "before", "limit", "format")
MAX_PARAM_CHARS = 200


def _ms(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400, "invalid_field", f"{name} must be a time in ms since the epoch, got {value!r:.40}"
        ) from None


def audit_query(request: Request) -> AuditQuery:
    """The query string as an :class:`AuditQuery`; refuses what it cannot read."""
    params = request.query_params
    unknown = set(params) - set(QUERY_PARAMS)
    if unknown:
        raise ApiError(
            400,
            "invalid_field",
            f"unknown parameters {sorted(unknown)}; use {', '.join(QUERY_PARAMS)}",
        )
    for name, value in params.items():
        if len(value) > MAX_PARAM_CHARS:
            raise ApiError(400, "invalid_field", f"{name} is over {MAX_PARAM_CHARS} characters")
    limit_text = params.get("limit", str(PAGE_DEFAULT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= PAGE_MAX:
        raise ApiError(400, "invalid_field", f"limit must be an integer 1..{PAGE_MAX}")
    return AuditQuery(
        actor=params.get("actor"),
        action=params.get("action"),
        target=params.get("target"),
        since=_ms(request, "since"),
        until=_ms(request, "until"),
        before=params.get("before"),
        limit=int(limit_text),
    )


class AuditApi:
    """Reads a room's audit log for its staff: a page (newest first) or an export."""

    def __init__(self, rooms_api: RoomsApi, rooms: RoomService) -> None:
        self.api = rooms_api
        self.rooms = rooms

    async def log(self, request: Request) -> Response:
        room_id: str = request.path_params["room_id"]
        await self.api.callers.staff(request, room_id, "read the audit log")
        query = audit_query(request)
        export = request.query_params.get("format")
        if export not in (None, "json", "csv"):
            raise ApiError(400, "invalid_field", "format must be json or csv")
        await self.api.room(room_id)
        entries = await self.rooms.audit_log.entries(room_id)
        if export is None:
            return json_response(page(entries, query))
        # An export: every matching entry, oldest first (the cursor and limit do not apply).
        chosen = [e for e in entries if query.matches(e)]
        name = f"hudong-{room_id}-audit-log.{export}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if export == "csv":
            body = to_csv(csv_rows(chosen))
            return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
        response = json_response({"room": room_id, "entries": chosen})
        response.headers.update(headers)
        return response
