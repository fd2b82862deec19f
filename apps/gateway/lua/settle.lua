-- Settlement: give back what a finished request did not use, in one round trip.
--
-- KEYS: 1 limits hash (token buckets, the key's in-flight count)  2 credit available
--       3 holds hash  4 hold deadlines zset
--       5 this request's settled marker (a retried settlement is a no-op)
-- ARGV: 1 request id  2 tokens to give back (estimate - actual; negative takes more)
--       3 key tpm  4 org tpm (0: none)  5 cost (1e-10 USD, integer)  6 the API key id
--       7 the key's concurrency limit at admission (0: the request took no slot of its key)
--       8 the limits hash's lifetime (s), as admission sets it
-- Returns 1, or false if the credit counter is not seeded (Redis lost it).

if redis.call('SET', KEYS[5], '1', 'NX', 'EX', 86400) == false then
  return 1  -- settled already: a retry after a lost reply
end

local id = ARGV[1]
local counted = tonumber(ARGV[7]) > 0
local held = redis.call('HGET', KEYS[3], id)
if held then
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], counted and (id .. ' ' .. ARGV[6]) or id)
end
-- The key's slot, unless the hold already expired (admission then gave the slot back).
local free_slot = counted and held

local refund = tonumber(ARGV[2])
local key_tpm, org_tpm = tonumber(ARGV[3]), tonumber(ARGV[4])
local refunds = refund ~= 0 and (key_tpm > 0 or org_tpm > 0)
if refunds or free_slot then
  local slot_field = 'k' .. ARGV[6] .. ':n'
  local buckets = {{'k' .. ARGV[6] .. ':t', key_tpm}, {'o:t', org_tpm}}
  local states = redis.call('HMGET', KEYS[1], buckets[1][1], buckets[2][1], slot_field)
  local writes = {}
  if refunds then
    local clock = redis.call('TIME')
    local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
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
  end
  if free_slot then
    table.insert(writes, slot_field)
    table.insert(writes, math.max(0, tonumber(states[3] or '0') - 1))
  end
  if #writes > 0 then
    redis.call('HSET', KEYS[1], unpack(writes))
    redis.call('EXPIRE', KEYS[1], ARGV[8])
  end
end

if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
if held then
  redis.call('INCRBY', KEYS[2], string.format('%.0f', tonumber(held) - tonumber(ARGV[5])))
else
  redis.call('DECRBY', KEYS[2], ARGV[5])
end
return 1
