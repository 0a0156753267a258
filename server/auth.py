"""Tokens and roles (ARCHITECTURE.md, "Identities and roles").

The admin token is a configured secret compared in constant time. Room tokens are
JWTs (HS256) signed with ``server.secret``: an embedding platform holding the same
secret can sign viewer tokens itself. Claims: ``room``, ``role``, ``sub`` (a stable
user id), ``name`` (display name), ``iat``, ``exp``, and ``guest`` (true) in the
tokens the server makes for anonymous viewers: a guest may rename itself by joining
with its token and a new name, an integrator's viewer may not. Tokens the server
mints also carry ``jti`` (the token's id, for revoking it alone) and ``inc`` (the
room's incarnation: a token of a deleted room is refused in its re-created
namesake); an integrator's token may leave both out (server/rooms/trust.py).

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
import math
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
# A token may mint only tokens of a lower rank (and no later expiry than its own).
RANK = {"host": 3, "moderator": 2, "screen": 1, "viewer": 1}
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
    token_id: str = ""  # the ``jti`` claim ("" when the token has none)
    issued_at: float = 0.0  # ``iat``, seconds since the epoch
    expires_at: float = float("inf")  # ``exp``
    incarnation: int | None = None  # ``inc``: the room's incarnation it was minted for

    def public(self) -> dict[str, str]:
        return {"id": self.user_id, "name": self.name, "role": self.role}


def new_token_id(expires_at: int) -> str:
    """A token's id (``jti``): its expiry in hex, then 16 random characters. Revoking a
    token by id keeps the entry only until then, with no record of minted tokens."""
    return f"{expires_at:x}.{secrets.token_urlsafe(12)}"


def expiry_in_token_id(token_id: str) -> int | None:
    """The expiry a token id of :func:`new_token_id` names (None for another form)."""
    head, dot, _ = token_id.partition(".")
    if not dot or not 1 <= len(head) <= 12:
        return None
    try:
        return int(head, 16)
    except ValueError:
        return None


def incarnation_of(created_at: float) -> int:
    """A room's incarnation, from its creation time (microseconds): a room deleted and
    created again under the same id has another one."""
    return round(created_at * 1_000_000)


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
        self,
        room: str,
        role: Role,
        user_id: str,
        name: str,
        ttl_s: int,
        *,
        guest: bool = False,
        incarnation: int | None = None,
    ) -> tuple[str, int]:
        """A signed room token and its expiry (seconds since the epoch)."""
        token, exp, _ = self.issue(
            room, role, user_id, name, ttl_s, guest=guest, incarnation=incarnation
        )
        return token, exp

    def mint_guest(self, room: str, created_at: float, identity: Identity, ttl_s: int) -> str:
        """An anonymous viewer's own token, for the room created at ``created_at``."""
        inc = incarnation_of(created_at)
        user, name = identity.user_id, identity.name
        return self.mint(room, "viewer", user, name, ttl_s, guest=True, incarnation=inc)[0]

    def issue(
        self,
        room: str,
        role: Role,
        user_id: str,
        name: str,
        ttl_s: int,
        *,
        guest: bool = False,
        incarnation: int | None = None,
    ) -> tuple[str, int, str]:
        """A signed room token, its expiry and its id (``jti``). ``iat`` has
        milliseconds, so a token minted just after a revocation is not revoked by it;
        they are cut, not rounded: a token is never issued after the moment it was made."""
        now = time.time()
        exp = int(now) + ttl_s
        claims: dict[str, object] = {
            "iss": ISSUER,
            "room": room,
            "role": role,
            "sub": user_id,
            "name": name,
            "iat": math.floor(now * 1000) / 1000,
            "exp": exp,
            "jti": new_token_id(exp),
        }
        if incarnation is not None:
            claims["inc"] = incarnation
        if guest:
            claims["guest"] = True
        return jwt.encode(claims, self._secret, algorithm="HS256"), exp, str(claims["jti"])

    def verify(self, token: str, room: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                # "Issued in the future" says only that the node that minted it has a
                # clock ahead of this one's (or was a millisecond ahead of it, rounded):
                # a token of ours is good from the moment it exists, until its exp.
                options={"require": ["exp", "room", "role", "sub"], "verify_iat": False},
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
        iat, inc = claims.get("iat"), claims.get("inc")
        return Identity(
            user_id,
            str(name)[:32],
            role,
            room,
            guest,
            token_id=str(claims.get("jti") or "")[:64],
            issued_at=float(iat) if isinstance(iat, (int, float)) else 0.0,
            expires_at=float(claims["exp"]),
            incarnation=inc if type(inc) is int else None,
        )
