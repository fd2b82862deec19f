-- Settlement: give back what a finished request did not use, in one round trip.
--
-- KEYS: 1 token buckets hash  2 key in-flight zset  3 credit available  4 holds hash
--       5 hold deadlines zset  6 this request's settled marker (a retried settlement is a no-op)
-- ARGV: 1 request id  2 tokens to give back (estimate - actual; negative takes more)
--       3 key tpm  4 org tpm (0: none)  5 cost (1e-10 USD, integer)  6 the API key id
--       7 the key's concurrency limit at admission (0: it has no in-flight slot)
-- Returns 1, or false if the credit counter is not seeded (Redis lost it).

if redis.call('SET', KEYS[6], '1', 'NX', 'EX', 86400) == false then
  return 1  -- settled already: a retry after a lost reply
end

local refund = tonumber(ARGV[2])
local key_tpm, org_tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
if refund ~= 0 and (key_tpm > 0 or org_tpm > 0) then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
  local buckets = {{'k' .. ARGV[6] .. ':t', key_tpm}, {'o:t', org_tpm}}
  local states = redis.call('HMGET', KEYS[1], buckets[1][1], buckets[2][1])
  local writes = {}
  for i, b in ipairs(buckets) do
    local limit = b[2]
    if limit > 0 then
      local level = limit
      if states[i] then
        local space = string.find(states[i], ' ', 1, true)
        local last = tonumber(string.sub(states[i], 1, space - 1))
        local at = tonumber(string.sub(states[i], space + 1))
        level = math.min(limit, last + (now - at) * limit / 60)
      end
      level = math.max(-limit, math.min(limit, level + refund))
      table.insert(writes, b[1])
      table.insert(writes, tostring(level) .. ' ' .. tostring(now))
    end
  end
  redis.call('HSET', KEYS[1], unpack(writes))
  redis.call('EXPIRE', KEYS[1], 120)
end

if tonumber(ARGV[7]) > 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
end

local held = redis.call('HGET', KEYS[4], ARGV[1])
if held then
  redis.call('HDEL', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
if held then
  redis.call('INCRBY', KEYS[3], string.format('%.0f', tonumber(held) - tonumber(ARGV[5])))
else
  redis.call('DECRBY', KEYS[3], ARGV[5])
end
return 1
