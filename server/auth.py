"""Tokens and roles (ARCHITECTURE.md, "Identities and roles").

The admin token is a configured secret compared in constant time. Room tokens are
JWTs (HS256) signed with ``server.secret``: an embedding platform holding the same
secret can sign viewer tokens itself. Claims: ``room``, ``role``, ``sub`` (a stable
user id), ``name`` (display name), ``iat``, ``exp``, and ``guest`` (true) in the
tokens the server makes for anonymous viewers: a guest may rename itself by joining
with its token and a new name, an integrator's viewer may not.

Pseudonyms (PROTOCOL.md, "Privacy"): a viewer's ``sub`` comes from outside (an
integrator's user id, a platform id such as ``bili:12345``). With
``server.pseudonymous_ids`` (the default), the identity of a viewer token is not that
id but its keyed hash, ``p-`` and 24 hex digits of HMAC-SHA256 under a key derived from
``server.secret``: the same person gets the same id in every room and across restarts,
it is the id the wire shows and everything in the store is kept under, and nobody
without the secret can tell whose it is. Guests' ids are random already and stay as
they are; staff tokens (host, moderator, screen) keep their ids, which name the
operator's accounts in moderation and audit records.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt

Role = Literal["host", "moderator", "screen", "viewer"]
ROLES: tuple[Role, ...] = ("host", "moderator", "screen", "viewer")
STAFF_ROLES = frozenset({"host", "moderator"})
# Screens (overlay, wall) only watch; they may not send commands that change anything.
SENDING_ROLES = frozenset({"host", "moderator", "viewer"})
ISSUER = "hudong"
MAX_TTL_S = 400 * 24 * 3600
# An anonymous viewer's default name is a word of its language (``join``'s ``lang``,
# primary subtag) and the end of its id; one name that every page shows.
GUEST_WORDS = {"zh": "观众", "en": "guest"}


def guest_name(user_id: str, lang: str | None = None) -> str:
    """The default display name of the anonymous viewer ``user_id``: ``观众 09ca`` for a
    Chinese browser, ``guest 09ca`` for any other."""
    word = GUEST_WORDS.get((lang or "").split("-")[0].lower(), GUEST_WORDS["en"])
    return f"{word} {user_id[-4:]}"


class AuthError(Exception):
    """A token that does not grant what was asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who holds a room token: a stable user id, a display name, a role, a room, and
    whether the server made the identity for an anonymous viewer (a guest)."""

    user_id: str
    name: str
    role: Role
    room: str
    guest: bool = False

    def public(self) -> dict[str, str]:
        return {"id": self.user_id, "name": self.name, "role": self.role}


def new_secret() -> str:
    return secrets.token_urlsafe(33)  # 44 characters


MIN_SECRET_BYTES = 32  # RFC 7518 section 3.2: an HS256 key is at least 256 bits


PSEUDONYM_PREFIX = "p-"
PSEUDONYM_KEY_LABEL = b"hudong viewer pseudonyms v1"


class Authority:
    """Checks the admin token, mints and verifies room tokens, and makes viewers'
    pseudonyms."""

    def __init__(self, admin_token: str, secret: str, *, pseudonymous: bool = True) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"server.secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518 3.2); "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        self._admin = admin_token.encode()
        self._secret = secret
        self.pseudonymous = pseudonymous
        self._pseudonym_key = hmac.digest(secret.encode(), PSEUDONYM_KEY_LABEL, "sha256")

    def pseudonym(self, sub: str) -> str:
        """The id a viewer with the outside id ``sub`` has here (module docstring)."""
        digest = hmac.new(self._pseudonym_key, sub.encode(), "sha256").hexdigest()
        return PSEUDONYM_PREFIX + digest[:24]

    def viewer_id(self, sub: str, role: str, guest: bool) -> str:
        """The user id of a token's identity: a viewer's ``sub`` as its pseudonym."""
        if self.pseudonymous and role == "viewer" and not guest:
            return self.pseudonym(sub)
        return sub

    def is_admin(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self._admin)

    def mint(
        self, room: str, role: Role, user_id: str, name: str, ttl_s: int, *, guest: bool = False
    ) -> tuple[str, int]:
        now = int(time.time())
        exp = now + ttl_s
        claims: dict[str, object] = {
            "iss": ISSUER,
            "room": room,
            "role": role,
            "sub": user_id,
            "name": name,
            "iat": now,
            "exp": exp,
        }
        if guest:
            claims["guest"] = True
        return jwt.encode(claims, self._secret, algorithm="HS256"), exp

    def verify(self, token: str, room: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "room", "role", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the token is invalid: {exc}") from None
        if claims.get("room") != room:
            raise AuthError(f"the token is for room {claims.get('room')!r}, not {room!r}")
        role = claims.get("role")
        if role not in ROLES:
            raise AuthError(f"the token has an unknown role {role!r}")
        guest = claims.get("guest") is True and role == "viewer"
        user_id = self.viewer_id(str(claims["sub"]), role, guest)
        name = claims.get("name") or user_id
        return Identity(user_id, str(name)[:32], role, room, guest)
