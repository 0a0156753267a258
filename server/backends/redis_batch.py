"""Many contributions to one room in one Lua script call (:meth:`Store.submit_many`
on Redis): the batched commit of issue 14.

The script applies each item with the semantics of :meth:`Store.apply` (duplicate
keys, ``once``, caps, replace and withdraw, versioned or not, keyed or not, uniform
boxes; base.py), in list order (a single ``submit`` is a batch of one), so an item
sees what the items before it did: a key repeated in the list is a ``duplicate``, a
cap reached by an earlier item refuses a later one. It runs as one script, so the
batch is atomic, and one round trip carries the whole list. Every key is the room's
(one hash tag), so on a Redis Cluster the script touches one slot.

The answer is kept small: the counters of each box as the script found them, then
per item its status, version and (applied) the counter steps it made; the caller
replays the steps to give each item the counters after it. A script that re-read
every box after every item would send the whole box back per vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from server.backends.base import ApplyResult, Submission

# Runs after redis.py's IF_ROOM (a missing room answers nil and changes nothing).
# KEYS: room, version, ids, then per box b (1-based) its rec, cnt and done hashes at
# 3b+1, 3b+2, 3b+3. ARGV: done ttl, the box ids (JSON list), the items (JSON list of
# [box number, viewer, done-key ('': not keyed, nothing looked up or kept), held value
# ('' withdraws), deltas, caps, once (0/1), versioned (0/1), uniform (0/1: the write
# tells a new holder, the old record is not read; base.py)]). Arguments and answer
# are JSON: redis-py packs and parses each element of a command or an answer in
# Python, so thousands of them cost more than the script itself.
# Answers JSON [the counters of each box before (HGETALL), per item [status,
# version, capped field or '', [counter, step, ...] for an applied item]].
SUBMIT_MANY = """
local ttl, ids, items = tonumber(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local version = tonumber(redis.call('GET', KEYS[2]) or '1')
local grown, touched, keyed, before, results = false, {}, {}, {}, {}
for b = 1, #ids do before[b] = redis.call('HGETALL', KEYS[3 * b + 2]) end
for n, item in ipairs(items) do
  local b, viewer, key, held = item[1], item[2], item[3], item[4]
  local rec, cnt, done = KEYS[3 * b + 1], KEYS[3 * b + 2], KEYS[3 * b + 3]
  local result, change = nil, {}
  local seen = key ~= '' and redis.call('HGET', done, key)
  if seen then
    result = {'duplicate', tonumber(seen), '', {}}
  elseif item[9] == 1 then
    local sign
    if held == '' then
      sign = -redis.call('HDEL', rec, viewer)
    else
      sign = redis.call('HSET', rec, viewer, held)
    end
    if sign ~= 0 then
      for name, amount in pairs(item[5]) do change[name] = sign * amount end
    end
  else
    local old = redis.call('HGET', rec, viewer)
    if old and item[7] == 1 then
      result = {'already_done', version, '', {}}
    else
      if old then
        for name, amount in pairs(cjson.decode(old)['d']) do
          change[name] = (change[name] or 0) - amount
        end
      end
      for name, amount in pairs(item[5]) do
        change[name] = (change[name] or 0) + amount
      end
      for name, cap in pairs(item[6]) do
        local step = change[name] or 0
        if step > 0 and tonumber(redis.call('HGET', cnt, name) or '0') + step > cap then
          result = {'capped', version, name, {}}
          break
        end
      end
      if not result then
        if held == '' then
          redis.call('HDEL', rec, viewer)
        else
          redis.call('HSET', rec, viewer, held)
        end
      end
    end
  end
  if not result then
    local steps = {}
    for name, step in pairs(change) do
      if step ~= 0 then
        if redis.call('HINCRBY', cnt, name, step) == 0 then redis.call('HDEL', cnt, name) end
        steps[#steps + 1] = name
        steps[#steps + 1] = step
      end
    end
    if item[8] == 1 then
      version = version + 1
      grown = true
      if key ~= '' then
        redis.call('HSET', done, key, version)
        keyed[b] = true
      end
    end
    touched[b] = true
    result = {'applied', version, '', steps}
  end
  results[n] = result
end
for b in pairs(touched) do redis.call('SADD', KEYS[3], ids[b]) end
for b in pairs(keyed) do redis.call('EXPIRE', KEYS[3 * b + 3], ttl) end
if grown then redis.call('SET', KEYS[2], version) end
return cjson.encode({before, results})
"""


def submit_many_call(
    items: Sequence[tuple[str, Submission]], done_ttl_s: int
) -> tuple[list[str], list[Any]]:
    """The key names (after the room's hash) and arguments of one SUBMIT_MANY call."""
    boxes: dict[str, int] = {}
    for iid, _ in items:
        boxes.setdefault(iid, len(boxes) + 1)
    names = ["version", "ids"]
    for iid in boxes:
        names += [f"i:{iid}:rec", f"i:{iid}:cnt", f"i:{iid}:done"]
    listed = [
        [
            boxes[iid],
            s.viewer_id,
            s.done_key if s.keyed else "",
            (s.held() or b"").decode(),  # the exact bytes Submission.held() gives
            s.deltas,
            s.caps,
            int(s.once),
            int(s.versioned),
            int(s.uniform),
        ]
        for iid, s in items
    ]
    return names, [done_ttl_s, orjson.dumps(list(boxes)), orjson.dumps(listed)]


def submit_many_results(
    items: Sequence[tuple[str, Submission]], answer: bytes | str
) -> list[ApplyResult]:
    """Each item's ApplyResult from SUBMIT_MANY's answer: the counters after it are the
    box's counters before the batch plus the steps of the applied items up to it."""
    before, answers = orjson.loads(answer)
    counters: dict[str, dict[str, int]] = {}
    for iid, _ in items:
        if iid not in counters:
            flat = before[len(counters)] or ()  # Lua's cjson writes an empty table as {}
            counters[iid] = {flat[j]: int(flat[j + 1]) for j in range(0, len(flat), 2)}
    results = []
    for (iid, _), (status, version, capped, steps) in zip(items, answers, strict=True):
        box = counters[iid]
        for j in range(0, len(steps or ()), 2):
            value = box.get(steps[j], 0) + int(steps[j + 1])
            if value:
                box[steps[j]] = value
            else:
                box.pop(steps[j], None)
        results.append(
            ApplyResult(status, int(version), dict(box), capped if status == "capped" else None)
        )
    return results
