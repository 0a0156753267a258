"""The audit log's part of the Redis store (server/rooms/audit.py): one capped list
per room (``{room}:audit``, JSON entries, oldest first), appended, read whole, and
rewritten in place when a user's id must go (:meth:`RedisAuditLog.redact_audit`).

Every script checks that the room exists in the same script, like the store's others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from server.backends.base import RoomNotFound
from server.backends.memory import audit_value

IF_ROOM = "if redis.call('HEXISTS', KEYS[1], 'title') == 0 then return false end\n"

# KEYS: room, audit list   ARGV: a Lua pattern of the JSON string to replace (as a
# value: followed by , ] or }), its replacement (% escaped). Answers the entries changed.
REDACT = (
    IF_ROOM
    + """
local changed = 0
for i, entry in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local new, n = string.gsub(entry, ARGV[1], ARGV[2])
  if n > 0 then
    redis.call('LSET', KEYS[2], i - 1, new)
    changed = changed + 1
  end
end
return changed
"""
)
LUA_MAGIC = "^$()%.[]*+-?"


def _lua_literal(text: str) -> str:
    """``text`` as a Lua pattern that matches it literally."""
    return "".join("%" + c if c in LUA_MAGIC else c for c in text)


class RedisAuditLog:
    """Appends, reads and redacts a room's audit log on Redis; mixed into the store,
    whose ``_script``, ``_read`` and ``room_version`` it uses."""

    _append_replay: Any
    _redact_audit: Any

    async def _script(
        self, script: Any, room_id: str, names: Sequence[str], args: list[Any]
    ) -> Any:
        raise NotImplementedError  # the store's

    async def _read(self, room_id: str, *reads: tuple[str, str, str]) -> list[Any]:
        raise NotImplementedError  # the store's

    async def room_version(self, room_id: str) -> int:
        raise NotImplementedError  # the store's

    async def append_audit(self, room_id: str, entries: list[dict[str, Any]], keep: int) -> None:
        if not entries:
            await self.room_version(room_id)  # RoomNotFound for a missing room
            return
        kept = [orjson.dumps(e) for e in entries[-keep:]] if keep > 0 else []
        # The replay's script: a capped list of a room that must exist.
        if await self._script(self._append_replay, room_id, ["audit"], [keep, *kept]) is None:
            raise RoomNotFound(room_id)

    async def audit_log(self, room_id: str) -> list[dict[str, Any]]:
        [raw] = await self._read(room_id, ("LRANGE", "audit", ""))
        return [orjson.loads(e) for e in raw]

    async def redact_audit(self, room_id: str, user_id: str, replacement: str) -> int:
        old, new = audit_value(user_id), audit_value(replacement)
        pattern = _lua_literal(old.decode()) + "([,%]}])"
        args = [pattern, new.decode().replace("%", "%%") + "%1"]
        changed = await self._script(self._redact_audit, room_id, ["audit"], args)
        if changed is None:
            raise RoomNotFound(room_id)
        return int(changed)
