"""Whether a room token still holds (PROTOCOL.md, "Token lifecycle"): its room's
incarnation, and the room's revocations.

A token the server minted names the incarnation of its room (``inc``, from the room
record's creation time), so a room deleted and created again under the same id refuses
the old room's tokens. A host or the admin revokes every token of a role (those issued
until then) or one token by its id (``jti``). Revocations are kept in the store, one
record per entry in a box no interaction id can take (``~revoked``), each with the time
the tokens it revokes would have expired anyway (``until``; a token id the server made
names its expiry, server/auth.py): entries past it are
ignored, and dropped at the next revocation, so the list stays bounded. A revocation is
marked like an interaction's change, so every node serving the room re-reads the list
at its next flush (and at a resync after a lost relay message) and closes the sessions
it revokes; a join or a REST call with a revoked token is refused.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from protocol.messages import CommandError
from server.auth import MAX_TTL_S, ROLES, Identity, expiry_in_token_id, incarnation_of
from server.backends.base import RoomRecord, Store

REVOKED_BOX = "~revoked"
MAX_TOKEN_ID_CHARS = 64
TOKEN_ID_PREFIX = "jti:"  # a revoked token id's entry in the box


def refusal(
    identity: Identity, record: RoomRecord, revoked: Mapping[str, Mapping[str, Any]], now: float
) -> str | None:
    """Why ``identity``'s token no longer holds in the room (None: it holds)."""
    if identity.expires_at <= now:
        return "the token has expired"
    if identity.incarnation is not None and identity.incarnation != incarnation_of(
        record.created_at
    ):
        return f"the token is for an earlier room {record.id!r}, deleted since"
    if identity.token_id:
        entry = revoked.get(TOKEN_ID_PREFIX + identity.token_id)
        if entry is not None and entry.get("until", 0) > now:
            return "the token was revoked"
    entry = revoked.get(f"role:{identity.role}")
    if entry is not None and entry.get("until", 0) > now and identity.issued_at <= entry["before"]:
        return f"every {identity.role} token issued until {entry['before']:.0f} was revoked"
    return None


class Trust:
    """Revokes tokens in the store and tells whether a token is refused."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def revoke(self, room_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Revoke ``{"role": ...}`` (every token of the role issued until now) or
        ``{"jti": ...}`` (one token); returns the entry and the room ``version``."""
        role, token_id = fields.get("role"), fields.get("jti")
        now = self._clock()
        if (role is None) == (token_id is None):
            raise CommandError("invalid_field", "send either 'role' or 'jti' to revoke")
        if role is not None:
            if role not in ROLES:
                raise CommandError("invalid_field", f"role must be one of {', '.join(ROLES)}")
            key = f"role:{role}"
            entry: dict[str, Any] = {"role": role, "before": now, "until": now + MAX_TTL_S}
        else:
            if not isinstance(token_id, str) or not 1 <= len(token_id) <= MAX_TOKEN_ID_CHARS:
                raise CommandError(
                    "invalid_field", f"jti must be a token id of 1 to {MAX_TOKEN_ID_CHARS} chars"
                )
            key = TOKEN_ID_PREFIX + token_id
            expires = expiry_in_token_id(token_id)  # the server's ids name their expiry
            until = min(expires, now + MAX_TTL_S) if expires is not None else now + MAX_TTL_S
            entry = {"jti": token_id, "until": until}
        held = await self.store.records(room_id, REVOKED_BOX)
        for old, record in held.items():  # bounded: what expired goes with each revocation
            if record.get("until", 0) <= now and old != key:
                await self.store.apply(room_id, REVOKED_BOX, old, _key(), None, {})
        result = await self.store.apply(room_id, REVOKED_BOX, key, _key(), entry, {})
        return {**_public(entry), "version": result.version}

    async def listing(self, room_id: str) -> dict[str, Any]:
        """The revocations in force (GET /api/v1/rooms/{id}/revocations)."""
        now = self._clock()
        held = await self.store.records(room_id, REVOKED_BOX)
        entries = [_public(e) for _, e in sorted(held.items()) if e.get("until", 0) > now]
        return {"revocations": entries}

    async def check(
        self,
        identity: Identity,
        record: RoomRecord,
        revoked: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Refuse (``unauthorized``) a token that no longer holds; ``revoked``: the
        room's list as a served room keeps it (else read from the store)."""
        if revoked is None:
            revoked = await self.store.records(record.id, REVOKED_BOX)
        why = refusal(identity, record, revoked, self._clock())
        if why is not None:
            raise CommandError("unauthorized", why)


def _key() -> str:
    return f"rv-{secrets.token_hex(8)}"


def _public(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k in ("role", "jti")}
    if "before" in entry:
        out["issued_before"] = int(entry["before"] * 1000)
    out["until"] = int(min(entry["until"], 2**52 / 1000) * 1000)
    return out
