"""One viewer's data and retention on Redis: a viewer's data found, and erased, by one
Lua script per room (server/backends/viewers.py says what the data is); what is past
the room's retention dropped by another (server/backends/retention.py).

The script reads every box of the room (their ids are in the room's ``ids`` set; the
box keys share the room's hash tag, so one slot holds them all), the token records,
the replay list and the interaction states, and answers what it found as raw values;
the matching rules are the same as the memory store's, written in Lua. With ``erase``
it also removes it all, in the same script: atomic, like every write to a room.

Each ``…_call`` gives :meth:`RedisStore._call` the key names, the arguments after the
room's key prefix (always ARGV[1]) and how to read the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from server.backends.retention import KEPT_BOXES, Cutoffs
from server.backends.viewers import ViewerData, holds, sent_by, token_of, tombstone

T = TypeVar("T")
Call = tuple[list[str], list[Any], Callable[[Any], T]]

# KEYS: room, version, interactions, tokens, replay, ids
# ARGV: key prefix of the room, viewer id, the viewer id as JSON, erase ('1'/'0'),
# the replacement id as JSON. Answers false for a missing room, else
# {records {box, holder, value, ...}, keys, tokens {value, ...}, replay {value, ...},
#  interactions {id, ...}, version}.
VIEWER = """
if redis.call('HEXISTS', KEYS[1], 'title') == 0 then return false end
local prefix, viewer, quoted = ARGV[1], ARGV[2], ARGV[3]
local erase, replacement = ARGV[4] == '1', ARGV[5]
local changed = false
local function mentions(raw) return string.find(raw, quoted, 1, true) ~= nil end
local function replace_all(raw)
  local out, at = {}, 1
  while true do
    local s, e = string.find(raw, quoted, at, true)
    if not s then break end
    out[#out + 1] = string.sub(raw, at, s - 1)
    out[#out + 1] = replacement
    at = e + 1
  end
  out[#out + 1] = string.sub(raw, at)
  return table.concat(out)
end
local records, tokens, replay, interactions, keys = {}, {}, {}, {}, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  local rec, cnt, done = prefix .. 'i:' .. id .. ':rec', prefix .. 'i:' .. id .. ':cnt',
    prefix .. 'i:' .. id .. ':done'
  local flat = redis.call('HGETALL', rec)
  for i = 1, #flat, 2 do
    local holder, raw = flat[i], flat[i + 1]
    local mine = holder == viewer
    if not mine and mentions(raw) then
      local ok, value = pcall(cjson.decode, raw)
      mine = ok and type(value['r']) == 'table' and value['r']['viewer_id'] == viewer
    end
    if mine then
      records[#records + 1] = id
      records[#records + 1] = holder
      records[#records + 1] = raw
      if erase then
        for name, amount in pairs(cjson.decode(raw)['d'] or {}) do
          if redis.call('HINCRBY', cnt, name, -amount) == 0 then redis.call('HDEL', cnt, name) end
        end
        redis.call('HDEL', rec, holder)
        changed = true
      end
    end
  end
  local mark, inner = viewer .. '|', '|' .. viewer .. '|'
  for _, key in ipairs(redis.call('HKEYS', done)) do
    if string.sub(key, 1, #mark) == mark or string.find(key, inner, 1, true) then
      keys = keys + 1
      if erase then redis.call('HDEL', done, key); changed = true end
    end
  end
end
local held = redis.call('HGETALL', KEYS[4])
for i = 1, #held, 2 do
  if mentions(held[i + 1]) then
    local ok, value = pcall(cjson.decode, held[i + 1])
    if ok and value['user_id'] == viewer then
      tokens[#tokens + 1] = held[i + 1]
      if erase then redis.call('HDEL', KEYS[4], held[i]); changed = true end
    end
  end
end
local kept = {}
for _, raw in ipairs(redis.call('LRANGE', KEYS[5], 0, -1)) do
  local sent = false
  if mentions(raw) then
    local ok, value = pcall(cjson.decode, raw)
    sent = ok and type(value['user']) == 'table' and value['user']['id'] == viewer
  end
  if sent then replay[#replay + 1] = raw else kept[#kept + 1] = raw end
end
if erase and #replay > 0 then
  local ttl = redis.call('PTTL', KEYS[5])
  redis.call('DEL', KEYS[5])
  for i = 1, #kept, 1000 do
    redis.call('RPUSH', KEYS[5], unpack(kept, i, math.min(i + 999, #kept)))
  end
  if ttl > 0 and #kept > 0 then redis.call('PEXPIRE', KEYS[5], ttl) end
  changed = true
end
local states = redis.call('HGETALL', KEYS[3])
for i = 1, #states, 2 do
  if mentions(states[i + 1]) then
    interactions[#interactions + 1] = states[i]
    if erase then
      redis.call('HSET', KEYS[3], states[i], replace_all(states[i + 1]))
      changed = true
    end
  end
end
local version
if changed then version = redis.call('INCR', KEYS[2])
else version = tonumber(redis.call('GET', KEYS[2]) or '1') end
return {records, keys, tokens, replay, interactions, version}
"""

VIEWER_KEYS = ["version", "interactions", "tokens", "replay", "ids"]


def viewer_call(viewer_id: str, erase: bool) -> Call[tuple[ViewerData, int]]:
    args = [viewer_id, orjson.dumps(viewer_id), "1" if erase else "0", orjson.dumps(tombstone())]
    return VIEWER_KEYS, args, lambda answer: viewer_result(viewer_id, answer)


def viewer_result(viewer_id: str, answer: Sequence[Any]) -> tuple[ViewerData, int]:
    """The script's answer as ViewerData (participants are a HyperLogLog on Redis: it
    keeps no ids, so whether the viewer is counted is unknown) and the room version."""
    records, keys, tokens, replay, interactions, version = answer
    data = ViewerData(keys=int(keys), participant=None)
    for i in range(0, len(records), 3):
        box, holder = _text(records[i]), _text(records[i + 1])
        found = holds(holder, records[i + 2], viewer_id)
        data.records.setdefault(box, {})[holder] = found["record"] if found else None
    data.tokens = [t for t in (token_of(raw, viewer_id) for raw in tokens) if t is not None]
    data.replay = [e for e in (sent_by(raw, viewer_id) for raw in replay) if e is not None]
    data.interactions = [_text(iid) for iid in interactions]
    return data, int(version)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# KEYS: room, version, tokens, replay, ids   ARGV: key prefix of the room, cutoffs
# (danmaku in ms, content, personal in s; 0: none), now (s), personal retention (s; 0:
# none). Answers false for a missing room, else {values dropped, room version}.
PRUNE = """
if redis.call('HEXISTS', KEYS[1], 'title') == 0 then return false end
local prefix, danmaku, content, personal = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
local now, keep_keys = tonumber(ARGV[5]), tonumber(ARGV[6])
local kept_boxes = {}  -- whose records retention keeps (retention.py, KEPT_BOXES)
for i = 7, #ARGV do kept_boxes[ARGV[i]] = true end
local latest = math.max(content, personal)
local dropped, records = 0, 0
if danmaku > 0 then
  local events, kept = redis.call('LRANGE', KEYS[4], 0, -1), {}
  for _, raw in ipairs(events) do
    local ok, value = pcall(cjson.decode, raw)
    if ok and type(value['ts']) == 'number' and value['ts'] < danmaku then
      dropped = dropped + 1
    else
      kept[#kept + 1] = raw
    end
  end
  if #kept < #events then
    redis.call('DEL', KEYS[4])
    for i = 1, #kept, 1000 do
      redis.call('RPUSH', KEYS[4], unpack(kept, i, math.min(i + 999, #kept)))
    end
  end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local rec = prefix .. 'i:' .. id .. ':rec'
  local flat = {}
  if not kept_boxes[id] then flat = redis.call('HGETALL', rec) end
  for i = 1, #flat, 2 do
    -- when it was written, off the value's end; parsed only when older than a cutoff
    local t = tonumber(string.match(flat[i + 1], ',"t":(%d+)}$'))
    if t and t < latest then
      local ok, value = pcall(cjson.decode, flat[i + 1])
      if ok then
        local cut = personal
        if type(value['r']) == 'table' and value['r']['viewer_id'] ~= nil then cut = content end
        if cut > 0 and t < cut then
          redis.call('HDEL', rec, flat[i])
          records = records + 1
        end
      end
    end
  end
  if keep_keys > 0 then redis.call('EXPIRE', prefix .. 'i:' .. id .. ':done', keep_keys, 'LT') end
end
local tokens = redis.call('HGETALL', KEYS[3])
for i = 1, #tokens, 2 do
  local ok, value = pcall(cjson.decode, tokens[i + 1])
  if ok and type(value['_expires']) == 'number' and value['_expires'] < now then
    redis.call('HDEL', KEYS[3], tokens[i])
    dropped = dropped + 1
  end
end
local version
if records > 0 then version = redis.call('INCR', KEYS[2])
else version = tonumber(redis.call('GET', KEYS[2]) or '1') end
return {dropped + records, version}
"""


def prune_call(cutoffs: Cutoffs, now: float) -> Call[tuple[int, int]]:
    # The boxes' idempotency keys expire this long after their last write (at most: a
    # write sets its 7 days again, and the next pass lowers it).
    personal_s = max(1, round(now - cutoffs.personal)) if cutoffs.personal else 0
    args = [
        int(cutoffs.danmaku * 1000),
        repr(cutoffs.content),
        repr(cutoffs.personal),
        repr(now),
        personal_s,
        *sorted(KEPT_BOXES),
    ]
    return (
        ["version", "tokens", "replay", "ids"],
        args,
        lambda answer: (int(answer[0]), int(answer[1])),
    )
