"""Lua scripts of the Redis backend. Each runs atomically inside redis-server."""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS: meta hash, stream. ARGV: channel, fresh epoch, kind, exclude, payload, max length,
#: history ttl ms (0: none). Appends to the capped stream and publishes in one step.
PUBLISH = (
    _NOW
    + """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
end
local off = redis.call('HINCRBY', KEYS[1], 'o', 1)
local maxlen = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
if maxlen > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', maxlen, '*', 'o', off, 'k', ARGV[3], 'd', ARGV[5])
  if ttl > 0 then
    redis.call('XTRIM', KEYS[2], 'MINID', now - ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
local head = 'm|' .. epoch .. '|' .. off .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|'
redis.call('PUBLISH', ARGV[1], head .. ARGV[5])
return {epoch, off}
"""
)

#: KEYS: meta hash, stream. ARGV: fresh epoch, history ttl ms. Returns {epoch, offset, entries}.
HISTORY = (
    _NOW
    + """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('DEL', KEYS[2])
  local ttl0 = tonumber(ARGV[2])
  if ttl0 > 0 then redis.call('PEXPIRE', KEYS[1], ttl0) end
end
local off = redis.call('HGET', KEYS[1], 'o')
local ttl = tonumber(ARGV[2])
local low = '-'
if ttl > 0 then low = tostring(now - ttl) end
return {epoch, off, redis.call('XRANGE', KEYS[2], low, '+')}
"""
)

#: KEYS: presence zset, info hash. ARGV: connection, entry json, ttl ms, channel.
PRESENCE_JOIN = (
    _NOW
    + """
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 3)
redis.call('PEXPIRE', KEYS[2], ttl * 3)
redis.call('PUBLISH', ARGV[4], 'p|join|0|' .. ARGV[2])
return 1
"""
)

#: KEYS: presence zset, info hash. ARGV: connection, entry json, channel.
PRESENCE_LEAVE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 1 then redis.call('PUBLISH', ARGV[3], 'p|leave|0|' .. ARGV[2]) end
return removed
"""

#: KEYS: presence zset, info hash. ARGV: ttl ms, channel, mode ('xx' refresh only live entries,
#: 'all' re-add them too, after a Redis restart), then connection/json pairs. Reaps expired entries
#: and announces them as expired leaves.
PRESENCE_REFRESH = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local all = ARGV[3] == 'all'
for i = 4, #ARGV, 2 do
  if all then
    redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  else
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  end
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, c in ipairs(dead) do
  local info = redis.call('HGET', KEYS[2], c)
  redis.call('ZREM', KEYS[1], c)
  redis.call('HDEL', KEYS[2], c)
  if info then redis.call('PUBLISH', ARGV[2], 'p|leave|1|' .. info) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl * 3)
  redis.call('PEXPIRE', KEYS[2], ttl * 3)
end
return #dead
"""
)

#: KEYS: presence zset, info hash. Returns the json of live entries, oldest join first.
PRESENCE_LIST = (
    _NOW
    + """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local out = {}
for _, c in ipairs(live) do
  local info = redis.call('HGET', KEYS[2], c)
  if info then out[#out + 1] = info end
end
return out
"""
)
