"""What every REST handler shares: JSON answers, bodies, bearer tokens, roles, and how
a refusal becomes an HTTP error (PROTOCOL.md, "REST API")."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.messages import CommandError
from server.auth import STAFF_ROLES, AuthError, Authority, Identity

MAX_BODY_BYTES = 65536
# How a refusal's code maps to an HTTP status (the code stays in the body); 400 otherwise.
STATUS_OF_CODE = {
    "unauthorized": 401,
    "forbidden": 403,
    "room_not_found": 404,
    "unknown_target": 404,
    "illegal_transition": 409,
    "not_open": 409,
    "no_entrants": 409,
    "limit_reached": 409,
    "store_unavailable": 503,
}


class ApiError(Exception):
    """A refused REST call: HTTP status, error code and a message that says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def unavailable() -> Response:
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


def refused(exc: CommandError) -> Response:
    """A room-layer refusal as the REST error: same code and detail fields."""
    if exc.code == "store_unavailable":
        return unavailable()
    body = {"code": exc.code, "message": exc.message, **exc.extra}
    return JSONResponse({"error": body}, STATUS_OF_CODE.get(exc.code, 400))


async def read_body(request: Request) -> dict[str, Any]:
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


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Callers:
    """Who is calling: the admin, or a role in a room, from the bearer token."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def require_admin(self, request: Request) -> None:
        token = bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer …'")
        if not self.authority.is_admin(token):
            raise ApiError(401, "unauthorized", "the admin token is wrong")

    def role(self, request: Request, room_id: str) -> str:
        """'admin', or the role of a valid room token for this room."""
        identity = self._identity(request, room_id)
        return "admin" if identity is None else identity.role

    def user(self, request: Request, room_id: str) -> str:
        """The user id of a valid room token for this room ("" for the admin)."""
        identity = self._identity(request, room_id)
        return "" if identity is None else identity.user_id

    def _identity(self, request: Request, room_id: str) -> Identity | None:
        """The room token's identity (None for the admin token); refuses a missing or
        invalid one."""
        token = bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send a token as 'Authorization: Bearer …'")
        if self.authority.is_admin(token):
            return None
        try:
            return self.authority.verify(token, room_id)
        except AuthError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None

    def staff(self, request: Request, room_id: str, what: str) -> str:
        """The caller's role when it is the admin, a host or a moderator."""
        role = self.role(request, room_id)
        if role not in ("admin", *STAFF_ROLES):
            raise ApiError(403, "forbidden", f"the {role} role may not {what}")
        return role
