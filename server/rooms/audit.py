"""The room's audit log (PROTOCOL.md, "Audit log"): who did what to which target,
when, from which node, and how it ended.

Every host, moderator and admin action is one entry: room create, update (settings,
title, mode) and delete, token minting, exports of what an interaction collected
(viewers' ids and names), and every host action of every kind and of moderation
(:func:`audited` wraps ``RoomService.host``, so a new kind's actions are recorded
without being named here). Viewers' own contributions (votes, danmaku) are
not. A refused action is recorded too, with its error code as the result.

Entries are kept with the room in the store (:meth:`Store.append_audit`), so any node
answers ``GET /api/v1/rooms/{id}/audit-log``; a room keeps its newest
``limits.audit_log_keep`` entries (10,000 by default) and they go with the room when it
is deleted. Each entry is also logged on the ``hudong.audit`` logger as one JSON line,
which is where a room's deletion is recorded (its log goes with it), and an admin's
change of a node's degrade floor (``node.degrade_floor``: the node's, no room's).

An entry (``at`` in ms since the epoch)::

    {"id", "at", "node", "actor": {"id", "name", "role"}, "action", "target": {…},
     "result": "ok" | an error code, "detail": {…}}
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from protocol.messages import CommandError
from server.auth import Identity
from server.backends.base import BackendUnavailable, RoomNotFound, Store
from server.rooms.moderation import ACTIONS as MODERATION_ACTIONS

log = logging.getLogger("hudong.audit")

AUDIT_KEEP = 10_000  # newest entries kept per room (limits.audit_log_keep)
ERASED = "(erased)"  # what stands for a user whose data was deleted (AuditLog.forget)
PAGE_DEFAULT = 100
PAGE_MAX = 1000
# Fields of a host action that name its target (an interaction, a user, a danmaku event,
# a wall post, a question, a co-design slot); every other field is the action's detail.
TARGET_FIELDS = ("interaction", "user", "event", "post", "question", "slot")
NOT_DETAIL = ("action", "op", "id")  # the command's own: what it is, its WebSocket id
DETAIL_CHARS = 200  # a detail value is cut to this many characters
DETAIL_ITEMS = 100  # and a list (a draw's winners) to this many items
# Who acted: a room token's identity, the admin token, or the server itself (the demo).
Actor = Identity | Literal["admin", "system"]


def actor_of(by: Actor) -> dict[str, str]:
    """The entry's ``actor``: user id, name and role ("admin" for the admin token)."""
    if isinstance(by, Identity):
        return {"id": by.user_id, "name": by.name, "role": by.role}
    return {"id": by, "name": by, "role": by}


def _short(value: Any) -> Any:
    if isinstance(value, str):
        return value[:DETAIL_CHARS]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return [_short(v) for v in value[:DETAIL_ITEMS]]
    return orjson.dumps(value, default=str).decode()[:DETAIL_CHARS]


def split_fields(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A host action's fields as the entry's ``target`` and ``detail``."""
    target = {k: _short(fields[k]) for k in TARGET_FIELDS if isinstance(fields.get(k), str)}
    detail = {k: _short(v) for k, v in fields.items() if k not in target and k not in NOT_DETAIL}
    return target, detail


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What ``GET …/audit-log`` asks for: filters (each optional), a cursor and a page size."""

    actor: str | None = None  # an actor's user id, or a role ("admin", "host", …)
    action: str | None = None  # an action, or its group: "moderation" matches "moderation.ban"
    target: str | None = None  # any target value (an interaction id, a user id, …)
    since: int | None = None  # ms since the epoch, inclusive
    until: int | None = None  # ms since the epoch, exclusive
    before: str | None = None  # the cursor: entries older than this entry id
    limit: int = PAGE_DEFAULT

    def matches(self, entry: Mapping[str, Any]) -> bool:
        actor = entry.get("actor") or {}
        action = str(entry.get("action", ""))
        if self.actor is not None and self.actor not in (actor.get("id"), actor.get("role")):
            return False
        if self.action is not None and self.action not in (action, action.split(".")[0]):
            return False
        if self.target is not None and self.target not in _target_values(entry):
            return False
        at = int(entry.get("at", 0))
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until


def _target_values(entry: Mapping[str, Any]) -> set[str]:
    values: set[str] = set()
    for value in (entry.get("target") or {}).values():
        values.update(map(str, value) if isinstance(value, list) else (str(value),))
    return values


def page(entries: list[dict[str, Any]], query: AuditQuery) -> dict[str, Any]:
    """The newest ``query.limit`` matching entries older than the cursor, newest first,
    and the cursor of the next page (None: no older entry matches)."""
    end = len(entries)
    if query.before is not None:
        ids = [e.get("id") for e in entries]
        if query.before in ids:
            end = ids.index(query.before)
        else:  # trimmed since: its time, written in the id, still says where it was
            at = _at_of_id(query.before)
            end = sum(1 for e in entries if int(e.get("at", 0)) < at)
    found: list[dict[str, Any]] = []
    for entry in reversed(entries[:end]):
        if query.matches(entry):
            if len(found) == query.limit:
                return {"entries": found, "next": found[-1]["id"]}
            found.append(entry)
    return {"entries": found, "next": None}


def _at_of_id(entry_id: str) -> int:
    try:
        return int(entry_id.split("-")[0], 16)
    except ValueError:
        return 0


def csv_rows(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries as flat rows for ``to_csv``: one column per part, target and detail as JSON."""
    return [
        {
            "id": e.get("id"),
            "at": e.get("at"),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(e.get("at", 0)) / 1000)),
            "node": e.get("node"),
            "actor_id": (e.get("actor") or {}).get("id"),
            "actor_name": (e.get("actor") or {}).get("name"),
            "actor_role": (e.get("actor") or {}).get("role"),
            "action": e.get("action"),
            "target": orjson.dumps(e.get("target") or {}).decode(),
            "result": e.get("result"),
            "detail": orjson.dumps(e.get("detail") or {}).decode(),
        }
        for e in entries
    ]


class AuditLog:
    """Writes a room's audit entries to the store (and the ``hudong.audit`` logger) and
    reads them back, filtered and paged."""

    def __init__(
        self,
        store: Store,
        node_id: str,
        *,
        keep: int = AUDIT_KEEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.keep = keep
        self._clock = clock

    def entry(
        self,
        by: Actor,
        action: str,
        target: Mapping[str, Any],
        result: str = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        at = int(self._clock() * 1000)
        return {
            "id": f"{at:x}-{secrets.token_hex(4)}",
            "at": at,
            "node": self.node_id,
            "actor": actor_of(by),
            "action": action,
            "target": dict(target),
            "result": result,
            "detail": dict(detail or {}),
        }

    async def record(
        self,
        room_id: str,
        by: Actor,
        action: str,
        target: Mapping[str, Any],
        result: str = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep one entry; an action that ran is not undone when its entry cannot be
        stored (the store failed after it): the entry is still logged, as an error."""
        entry = self.entry(by, action, target, result, detail)
        line = orjson.dumps({"room": room_id, **entry}).decode()
        try:
            await self.store.append_audit(room_id, [entry], self.keep)
        except (BackendUnavailable, RoomNotFound) as exc:
            log.error("audit entry not stored (%s): %s", type(exc).__name__, line)
            return
        log.info("%s", line)

    def gone(self, room_id: str, by: Actor) -> None:
        """A room was deleted, and its log with it: the entry goes to the node's log only."""
        entry = self.entry(by, "room.delete", {"room": room_id})
        log.info("%s", orjson.dumps({"room": room_id, **entry}).decode())

    def node_action(self, by: Actor, action: str, detail: Mapping[str, Any]) -> None:
        """An admin action on the node itself, no room's (the degrade floor): the
        node's log only."""
        entry = self.entry(by, action, {"node": self.node_id}, "ok", detail)
        log.info("%s", orjson.dumps({"room": None, **entry}).decode())

    async def forget(self, room_id: str, user_id: str) -> int:
        """A viewer's data is deleted: its id leaves the log (each entry keeps its place,
        naming ``ERASED`` instead); returns how many entries named it."""
        return await self.store.redact_audit(room_id, user_id, ERASED)

    async def entries(self, room_id: str) -> list[dict[str, Any]]:
        """The room's whole log, oldest first."""
        return await self.store.audit_log(room_id)

    async def run(
        self,
        room_id: str,
        by: Actor,
        action: str,
        fields: Mapping[str, Any],
        act: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run a host action ``act`` and record it once, with its result: "ok", or the
        refusal's error code (raised on)."""
        target, detail = split_fields(fields)
        group = "moderation" if action in MODERATION_ACTIONS else "interaction"
        try:
            reply = await act()
        except CommandError as exc:
            if exc.code != "store_unavailable":  # nothing to store it in
                await self.record(room_id, by, f"{group}.{action}", target, exc.code, detail)
            raise
        if action == "create" and isinstance(reply.get("interaction"), str):
            target = {"interaction": reply["interaction"], **target}
            detail = {"kind": _short(fields.get("kind"))}
        if isinstance(reply.get("winners"), list):  # a draw's outcome, whichever kind
            detail["winners"] = _short(reply["winners"])
        await self.record(room_id, by, f"{group}.{action}", target, "ok", detail)
        return reply


HostAction = Callable[[Any, str, str, Mapping[str, Any]], Awaitable[dict[str, Any]]]


def audited(host: HostAction) -> Callable[..., Coroutine[Any, Any, dict[str, Any]]]:
    """``RoomService.host``, taking ``by`` (who acted; "system" by default) and keeping
    each call in the room's audit log (:meth:`AuditLog.run`)."""

    @functools.wraps(host)
    async def run(
        service: Any, room_id: str, action: str, fields: Mapping[str, Any], by: Actor = "system"
    ) -> dict[str, Any]:
        audit: AuditLog = service.audit_log
        return await audit.run(
            room_id, by, action, fields, lambda: host(service, room_id, action, fields)
        )

    return run
