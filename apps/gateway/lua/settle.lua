-- Settlement: give back what a finished request did not use, in one round trip.
--
-- KEYS: 1 limits hash (limits_state.lua, prepended to this script)  2 credit available
--       3 holds hash  4 hold deadlines zset
--       5 this request's settled marker (a retried settlement is a no-op)
-- ARGV: 1 request id  2 tokens to give back (estimate - actual; negative takes more)
--       3 key tpm  4 org tpm (0: none)  5 cost (1e-10 USD, integer)  6 the API key id
--       7 the key's concurrency limit at admission (0: the request took no slot of its key)
--       8 how long the limits hash must outlive a write (s), as admission is told
--       9 how long the settled marker lives (s): longer than every retry of this settlement
-- Returns 1, or false if the credit counter is not seeded (Redis lost it).

if redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[9]) == false then
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
  local now = redis_now()
  local key_field = 'k' .. ARGV[6]
  local packed = redis.call('HMGET', KEYS[1], key_field, 'o', 'x')
  local writes = {}
  local limits = {key_tpm, org_tpm}
  for scope = 1, 2 do
    local limit = limits[scope]
    local refund_here = refunds and limit > 0
    local slot_here = scope == 1 and free_slot
    if refund_here or slot_here then
      local requests, requests_at, tokens_left, tokens_at, count = unpack_state(packed[scope], now)
      if refund_here then
        local level = refilled(tokens_left, tokens_at, limit, now)
        tokens_left, tokens_at = math.max(-limit, math.min(limit, level + refund)), now
      end
      if slot_here then count = math.max(0, count - 1) end
      writes[#writes + 1] = scope == 1 and key_field or 'o'
      writes[#writes + 1] = struct.pack(STATE, requests, requests_at, tokens_left, tokens_at, count)
    end
  end
  if #writes > 0 then
    write_limits(KEYS[1], packed[3], tonumber(ARGV[8]), now, unpack(writes))
  end
end

if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
if held then
  redis.call('INCRBY', KEYS[2], int(tonumber(held) - tonumber(ARGV[5])))
else
  redis.call('DECRBY', KEYS[2], ARGV[5])
end
return 1
