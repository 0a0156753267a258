"""What every REST handler shares: JSON answers, bodies, bearer tokens, roles, and how
a refusal becomes an HTTP error (PROTOCOL.md, "REST API")."""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.messages import CommandError
from server.api.limits import FailedLogins
from server.auth import STAFF_ROLES, AuthError, Authority, Identity

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

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


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
    """The JSON object of the body ({} for none). Its size is held to
    ``limits.max_body_bytes`` as it streams in (server/api/bodies.py)."""
    raw = await request.body()
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


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Callers:
    """Who is calling: the admin, or a role in a room, from the bearer token; an address
    that sent too many wrong tokens waits (server/api/limits.py, :class:`FailedLogins`)."""

    def __init__(
        self,
        authority: Authority,
        failed: FailedLogins | None = None,
        vouch: Callable[[Identity], Awaitable[None]] | None = None,
    ) -> None:
        self.authority = authority
        self.failed = failed if failed is not None else FailedLogins(5)
        # Refuses a room token its room no longer honours (revoked, of an earlier room).
        self.vouch = vouch

    def require_admin(self, request: Request) -> None:
        token = bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer …'")
        client = _client(request)
        self._hold_back(client)
        if not self.authority.is_admin(token):
            self.failed.failed(client)
            raise ApiError(401, "unauthorized", "the admin token is wrong")
        self.failed.succeeded(client)

    def require_token(self, request: Request, expected: str, setting: str) -> None:
        """Refuse a caller whose bearer token is not ``expected`` (the value of
        ``setting``, such as the metrics token); wrong ones count as wrong tokens."""
        token = bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", f"send {setting} as 'Authorization: Bearer …'")
        client = _client(request)
        self._hold_back(client)
        if not hmac.compare_digest(token.encode(), expected.encode()):
            self.failed.failed(client)
            raise ApiError(401, "unauthorized", f"the token is not {setting}")

    async def role(self, request: Request, room_id: str) -> str:
        """'admin', or the role of a valid room token for this room."""
        identity = await self.identity(request, room_id)
        return "admin" if identity is None else identity.role

    async def user(self, request: Request, room_id: str) -> str:
        """The user id of a valid room token for this room ("" for the admin)."""
        identity = await self.identity(request, room_id)
        return "" if identity is None else identity.user_id

    async def identity(self, request: Request, room_id: str) -> Identity | None:
        """The room token's identity (None for the admin token); refuses a missing,
        invalid or revoked one."""
        identity = self._identity(request, room_id)
        if identity is not None and self.vouch is not None:
            await self.vouch(identity)
        return identity

    def who(self, request: Request, room_id: str) -> Identity | Literal["admin"]:
        """The caller, for the audit log: a room token's identity, or the admin."""
        return self._identity(request, room_id) or "admin"

    def _identity(self, request: Request, room_id: str) -> Identity | None:
        token = bearer(request)
        if token is None:
            raise ApiError(401, "unauthorized", "send a token as 'Authorization: Bearer …'")
        client = _client(request)
        if self.failed.wait(client):
            # Held back: only a valid room token passes (it cannot be guessed); the
            # admin token is not even compared.
            try:
                return self.authority.verify(token, room_id)
            except AuthError:
                self._hold_back(client)
        if self.authority.is_admin(token):
            self.failed.succeeded(client)
            return None
        try:
            return self.authority.verify(token, room_id)
        except AuthError as exc:
            self.failed.failed(client)
            raise ApiError(401, "unauthorized", str(exc)) from None

    def _hold_back(self, client: str) -> None:
        """Refuse with 429 while ``client`` must wait after too many wrong tokens; the
        refusal counts as one more (the wait doubles)."""
        wait = self.failed.wait(client)
        if wait:
            self.failed.failed(client)
            seconds = math.ceil(self.failed.wait(client))
            raise ApiError(
                429,
                "rate_limited",
                f"too many wrong tokens from {client or 'this client'}; retry in {seconds} s",
                {"Retry-After": str(seconds)},
            )

    async def staff(self, request: Request, room_id: str, what: str) -> str:
        """The caller's role when it is the admin, a host or a moderator."""
        role = await self.role(request, room_id)
        if role not in ("admin", *STAFF_ROLES):
            raise ApiError(403, "forbidden", f"the {role} role may not {what}")
        return role
