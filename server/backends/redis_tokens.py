"""The Lua that keeps a room's records of minted tokens bounded on Redis (PROTOCOL.md,
"Tokens and roles"; issue 15, "Stores grow without bound"): each record lives in the
room's ``tokens`` hash until its token expires, with its expiry in the ``token_expiry``
sorted set beside it, and a room keeps at most ``keep`` of them."""

from __future__ import annotations

# A missing room is a nil answer (as every room script of server/backends/redis.py).
IF_ROOM = "if redis.call('HEXISTS', KEYS[1], 'title') == 0 then return false end\n"

# KEYS: room, tokens hash, token_expiry sorted set (hash -> expiry)
# ARGV: hash, record, expires, now, keep. Forgets the expired records and, past
# ``keep``, those that expire first (a bounded number per call); answers how many.
REMEMBER_TOKEN = (
    IF_ROOM
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 1000)
local over = redis.call('ZCARD', KEYS[3]) - #gone - tonumber(ARGV[5])
if over > 0 then
  if over > 1000 then over = 1000 end
  for _, h in ipairs(redis.call('ZRANGE', KEYS[3], #gone, #gone + over - 1)) do
    gone[#gone + 1] = h
  end
end
if #gone > 0 then
  redis.call('HDEL', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
return #gone
"""
)
