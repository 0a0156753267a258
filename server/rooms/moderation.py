"""Moderation (PROTOCOL.md, "Moderation"): retract a danmaku, mute or ban a user.

Mutes and bans are kept in the store, one record per user in a box whose name no
interaction id can take (``~moderation``), so they hold on every node: a change is
marked like an interaction's, and each node serving the room re-reads the records at
its next flush and closes the connections of users it banned. They apply to viewers
only: a host's or moderator's connection is never muted, closed or refused, so a
moderator cannot lock the host out (a staff token is taken back by revoking it or letting it
expire, server/rooms/trust.py).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from protocol.messages import CommandError
from server.backends.base import Store
from server.rooms.outbox import RoomOutbox
from server.rooms.served import ServedRoom

MODERATION_BOX = "~moderation"
ACTIONS = ("retract", "mute", "unmute", "ban", "unban")
DEFAULT_MUTE_S = 600
MAX_MUTE_S = 7 * 24 * 3600
MAX_USER_ID_CHARS = 128
MAX_EVENT_ID_CHARS = 200


def banned_users(records: Mapping[str, Mapping[str, Any]]) -> set[str]:
    return {user for user, record in records.items() if record.get("banned")}


def muted_for(room: ServedRoom, user_id: str, now: float) -> float:
    """Seconds the user stays muted in the room (0.0: not muted)."""
    until = room.moderation.get(user_id, {}).get("muted_until")
    return max(0.0, float(until) - now) if until is not None else 0.0


def check_not_muted(room: ServedRoom, user_id: str, now: float, cid: int | None = None) -> None:
    """Refuse a viewer's own words (danmaku, questions, posts) while muted."""
    left = muted_for(room, user_id, now)
    if left > 0:
        raise CommandError(
            "muted",
            f"a moderator muted you for {left:.0f} more seconds",
            cid,
            retry_after_ms=max(1, round(left * 1000)),
        )


def _user(fields: Mapping[str, Any], action: str) -> str:
    user = fields.get("user")
    if not isinstance(user, str) or not 1 <= len(user) <= MAX_USER_ID_CHARS:
        raise CommandError("invalid_field", f"{action} needs the 'user' id to {action}")
    return user


def next_record(
    held: Mapping[str, Any], action: str, fields: Mapping[str, Any], now: float
) -> dict[str, Any] | None:
    """A user's moderation record after ``action`` (None: nothing left to hold)."""
    if action == "mute":
        duration = fields.get("duration_s", DEFAULT_MUTE_S)
        if type(duration) is not int or not 1 <= duration <= MAX_MUTE_S:
            raise CommandError(
                "invalid_field", f"duration_s must be an integer of seconds, 1..{MAX_MUTE_S}"
            )
        record = {**held, "muted_until": now + duration}
    elif action == "unmute":
        record = {k: v for k, v in held.items() if k != "muted_until"}
    elif action == "ban":
        record = {**held, "banned": True}
    else:
        record = {k: v for k, v in held.items() if k != "banned"}
    return record if ("banned" in record or "muted_until" in record) else None


class Moderation:
    """Runs moderation actions against the store and the room's stream."""

    def __init__(
        self,
        store: Store,
        outbox: Callable[[], RoomOutbox],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._outbox = outbox
        self._clock = clock

    async def act(self, room_id: str, action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """A moderator's action; repeat-safe like host operations. Returns the reply, with
        the room ``version`` when the records changed (the caller marks the box)."""
        if action == "retract":
            event_id = fields.get("event")
            if not isinstance(event_id, str) or not 1 <= len(event_id) <= MAX_EVENT_ID_CHARS:
                raise CommandError("invalid_field", "retract needs the danmaku's 'event' id")
            self._outbox().announce(room_id, {"type": "retract", "id": event_id})
            return {"action": action, "event": event_id}
        user = _user(fields, action)
        held = (await self.store.records(room_id, MODERATION_BOX)).get(user) or {}
        now = self._clock()
        record = next_record(held, action, fields, now)
        result = await self.store.apply(
            room_id, MODERATION_BOX, user, f"mod-{secrets.token_hex(8)}", record, {}
        )
        reply: dict[str, Any] = {"action": action, "user": user, "version": result.version}
        if record and "muted_until" in record:
            reply["muted_until"] = int(record["muted_until"] * 1000)
        return reply

    async def listing(self, room_id: str) -> dict[str, Any]:
        """The room's muted and banned users (GET /api/v1/rooms/{id}/moderation)."""
        records = await self.store.records(room_id, MODERATION_BOX)
        now = self._clock()
        muted = [
            {"user": user, "muted_until": int(r["muted_until"] * 1000)}
            for user, r in sorted(records.items())
            if r.get("muted_until", 0) > now
        ]
        banned = [{"user": user} for user in sorted(banned_users(records))]
        return {"muted": muted, "banned": banned}
