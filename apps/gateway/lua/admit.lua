-- Admission: every check and every take for one request, atomically, in one round trip.
-- All keys share the tenant's hash tag, so this runs on Redis Cluster too. Calls into Redis
-- are kept few (each costs a microsecond or two of Redis time): limits that are not set cost
-- nothing; the organization's requests in flight are its holds (one per admitted request,
-- released at settlement or when its lifetime ends); the key's are counted in its field of
-- the limits hash (limits_state.lua, prepended to this script), and a hold that counts for
-- its key says so in its deadline entry ("<request> <key>"), so that a dead worker's slot is
-- given back with its hold.
--
-- KEYS: 1 key cut-off marker  2 tenant epoch  3 limits hash (limits_state.lua)
--       4 credit available  5 holds hash  6 hold deadlines zset
-- ARGV: 1 request id
--       2 key rpm  3 key tpm  4 key concurrency  5 org rpm  6 org tpm  7 org concurrency (0: none)
--       8 prompt tokens  9 output allowance (tokens, all choices)  10 choices (n)
--       11 prompt cost (1e-10 USD, may be fractional)  12 output price per token (1e-10 USD)
--       13 spending floor (1e-10 USD, <= 0)  14 minimal answer tokens
--       15 hold lifetime (s)  16 how long the limits hash must outlive a write (s)
--       17 the tenant epoch the caller's limits were read at (-1: unknown)
--       18 1 if the caller's record says the organization is suspended
--       19 the API key id (names the key's field)
-- Returns {verdict, epoch, ...}; verdicts: 1 admitted, 2 cut off, 3 rate limited,
-- 4 too many in flight, 5 insufficient credit, 6 credit counter not seeded,
-- 7 the caller's limits are stale (nothing taken: reload them and ask again),
-- 8 the organization is suspended (nothing taken).

local now = redis_now()
local state = redis.call('MGET', KEYS[2], KEYS[1], KEYS[4])
local epoch = tonumber(state[1] or '0')

if tonumber(ARGV[17]) ~= epoch then
  return {7, epoch}
end
if ARGV[18] == '1' then
  return {8, epoch}
end
if state[2] and tonumber(state[2]) <= now then
  return {2, epoch}
end
if not state[3] then
  return {6, epoch}
end
local balance = tonumber(state[3])

-- Release holds of requests whose worker died (bounded work per call; exact integer adds).
local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 100)
for _, member in ipairs(expired) do
  local space = string.find(member, ' ', 1, true)
  local id = space and string.sub(member, 1, space - 1) or member
  local held = redis.call('HGET', KEYS[5], id)
  if held then
    redis.call('INCRBY', KEYS[4], held)  -- held is the exact integer string stored below
    redis.call('HDEL', KEYS[5], id)
    balance = balance + tonumber(held)
    if space then  -- it held a slot of its key
      local field = 'k' .. string.sub(member, space + 1)
      local packed = redis.call('HGET', KEYS[3], field)
      if packed then
        local requests, requests_at, tokens_left, tokens_at, count = unpack_state(packed, now)
        redis.call('HSET', KEYS[3], field, struct.pack(STATE, requests, requests_at, tokens_left,
                                                       tokens_at, math.max(0, count - 1)))
      end
    end
  end
  redis.call('ZREM', KEYS[6], member)
end

-- Credit: hold the most the request can cost, lowering the allowance if needed. Lua numbers
-- are doubles, exact for integers below 2^53 units of 1e-10 USD (about 900,000 USD); the
-- counter itself only moves by INCRBY/DECRBY of exact integer text.
local prompt_cost = tonumber(ARGV[11])
local out_price = tonumber(ARGV[12])
local choices = tonumber(ARGV[10])
local spendable = balance - tonumber(ARGV[13])
local allowance = tonumber(ARGV[9])
local minimal = math.min(allowance, tonumber(ARGV[14]) * choices)
local full_cost = math.ceil(prompt_cost + allowance * out_price)
if spendable < prompt_cost + minimal * out_price then
  return {5, epoch, int(balance), int(full_cost)}
end
if spendable < full_cost and out_price > 0 then
  local per_choice = math.floor((spendable - prompt_cost) / (out_price * choices))
  allowance = per_choice * choices
end
local hold = math.ceil(prompt_cost + allowance * out_price)
local tokens = tonumber(ARGV[8]) + allowance

-- Token buckets: capacity = the per-minute limit, refilled continuously; the key's and the
-- organization's, for requests and for tokens, as limits_state.lua keeps them.
local kid = ARGV[19]
local key_field = 'k' .. kid
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5]), tonumber(ARGV[6])}
local wants = {1, tokens, 1, tokens}  -- buckets 1 and 3 count requests, 2 and 4 tokens
local key_lanes = tonumber(ARGV[4])
local key_limited = key_lanes > 0 or limits[1] > 0 or limits[2] > 0
local org_limited = limits[3] > 0 or limits[4] > 0

local levels = {}  -- what each limited bucket holds now
local in_flight = 0
local expiry_field = nil
if key_limited or org_limited then
  local packed = redis.call('HMGET', KEYS[3], key_field, 'o', 'x')
  levels, in_flight = bucket_levels(packed[1], packed[2], limits, now)
  expiry_field = packed[3]
end

local refused = nil
local wait = 0
for i = 1, 4 do
  local level, limit = levels[i], limits[i]
  if level and level < wants[i] then
    local need = (wants[i] - level) * 60 / limit
    if wants[i] > limit then need = -1 end
    if refused == nil or need < 0 or (wait >= 0 and need > wait) then
      refused = i
      wait = need
    end
  end
end

local function report(taken)
  return limits_report(levels, limits, taken and wants or nil)
end

if refused then
  local r = report(false)
  local kind = refused % 2 == 1 and 'requests' or 'tokens'
  local scope = refused <= 2 and 'key' or 'organization'
  return {3, epoch, kind, scope, math.ceil(wait * 1000),
          tostring(wants[refused]), limits[refused], r[1], r[2], r[3], r[4], r[5], r[6]}
end

-- Requests in flight: the key's counted in its field, the organization's are its holds.
local function too_many(scope, limit)
  local r = report(false)
  return {4, epoch, 'concurrency', scope, 1000, '1', limit, r[1], r[2], r[3], r[4], r[5], r[6]}
end
if key_lanes > 0 and in_flight >= key_lanes then
  return too_many('key', key_lanes)
end
local org_lanes = tonumber(ARGV[7])
if org_lanes > 0 and redis.call('HLEN', KEYS[5]) >= org_lanes then
  return too_many('organization', org_lanes)
end

-- Everything passed: take.
local function taken(i)
  return levels[i] and levels[i] - wants[i] or HUGE
end
local member = ARGV[1]
if key_lanes > 0 then
  in_flight = in_flight + 1
  member = ARGV[1] .. ' ' .. kid
end
local writes = {}
if key_limited then
  writes[#writes + 1] = key_field
  writes[#writes + 1] = struct.pack(STATE, taken(1), now, taken(2), now, in_flight)
end
if org_limited then
  writes[#writes + 1] = 'o'
  writes[#writes + 1] = struct.pack(STATE, taken(3), now, taken(4), now, 0)
end
if #writes > 0 then
  write_limits(KEYS[3], expiry_field, tonumber(ARGV[16]), now, unpack(writes))
end
local left = redis.call('DECRBY', KEYS[4], int(hold))
redis.call('HSET', KEYS[5], ARGV[1], int(hold))
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[15]), member)

local r = report(true)
return {1, epoch, allowance, int(hold), left, r[1], r[2], r[3], r[4], r[5], r[6]}
