-- Admission: every check and every take for one request, atomically, in one round trip.
-- All keys share the tenant's hash tag, so this runs on Redis Cluster too. Calls into Redis
-- are kept few (each costs a few microseconds of Redis time): limits that are not set cost
-- nothing; the organization's requests in flight are its holds (one per admitted request,
-- released at settlement or when its lifetime ends); the key's are a counter in the bucket
-- hash, and a hold that counts for its key says so in its deadline entry ("<request> <key>"),
-- so that a dead worker's slot is given back with its hold.
--
-- KEYS: 1 key cut-off marker  2 tenant epoch
--       3 limits hash (token buckets "level at", the key's in-flight count)
--       4 credit available  5 holds hash  6 hold deadlines zset
-- ARGV: 1 request id
--       2 key rpm  3 key tpm  4 key concurrency  5 org rpm  6 org tpm  7 org concurrency (0: none)
--       8 prompt tokens  9 output allowance (tokens, all choices)  10 choices (n)
--       11 prompt cost (1e-10 USD, may be fractional)  12 output price per token (1e-10 USD)
--       13 spending floor (1e-10 USD, <= 0)  14 minimal answer tokens
--       15 hold lifetime (s)  16 in-flight slot lifetime (s)
--       17 the tenant epoch the caller's limits were read at (-1: unknown)
--       18 1 if the caller's record says the organization is suspended
--       19 the API key id (names the key's buckets)
-- Returns {verdict, epoch, ...}; verdicts: 1 admitted, 2 cut off, 3 rate limited,
-- 4 too many in flight, 5 insufficient credit, 6 credit counter not seeded,
-- 7 the caller's limits are stale (nothing taken: reload them and ask again),
-- 8 the organization is suspended (nothing taken).

local function int(x) return string.format('%.0f', x) end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
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
      local field = 'k' .. string.sub(member, space + 1) .. ':n'
      local count = tonumber(redis.call('HGET', KEYS[3], field) or '0')
      if count > 0 then redis.call('HSET', KEYS[3], field, count - 1) end
    end
  end
  redis.call('ZREM', KEYS[6], member)
end

-- Credit: hold the most the request can cost, lowering the allowance if needed.
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

-- Token buckets: capacity = the per-minute limit, refilled continuously. All four live in one
-- hash, each field "level at" (tokens left, Redis time of that reading).
local kid = ARGV[19]
local buckets = {
  {'k' .. kid .. ':r', 1, tonumber(ARGV[2]), 'requests', 'key'},
  {'k' .. kid .. ':t', tokens, tonumber(ARGV[3]), 'tokens', 'key'},
  {'o:r', 1, tonumber(ARGV[5]), 'requests', 'organization'},
  {'o:t', tokens, tonumber(ARGV[6]), 'tokens', 'organization'},
}
local key_lanes = tonumber(ARGV[4])
local slot_field = 'k' .. kid .. ':n'
local limited = key_lanes > 0
for _, b in ipairs(buckets) do
  if b[3] > 0 then limited = true end
end
local states = {}
if limited then
  states = redis.call('HMGET', KEYS[3], buckets[1][1], buckets[2][1], buckets[3][1],
                      buckets[4][1], slot_field)
end
local levels = {}
local refused = nil
local wait = 0
for i, b in ipairs(buckets) do
  local limit = b[3]
  if limit > 0 then
    local level = limit
    if states[i] then
      local space = string.find(states[i], ' ', 1, true)
      local last, at = tonumber(string.sub(states[i], 1, space - 1)), tonumber(string.sub(states[i], space + 1))
      level = math.min(limit, last + (now - at) * limit / 60)
    end
    levels[i] = level
    if level < b[2] then
      local need = (b[2] - level) * 60 / limit
      if b[2] > limit then need = -1 end
      if refused == nil or need < 0 or (wait >= 0 and need > wait) then
        refused = i
        wait = need
      end
    end
  end
end

local function report(taken)
  -- For the headers: the bucket of each kind with the least left.
  local out = {}
  for _, kind in ipairs({'requests', 'tokens'}) do
    local best = nil
    for i, b in ipairs(buckets) do
      if b[4] == kind and b[3] > 0 then
        local left = levels[i] - (taken and b[2] or 0)
        if best == nil or left < best[2] then best = {b[3], left} end
      end
    end
    if best then
      local reset_ms = math.ceil((best[1] - best[2]) * 60000 / best[1])
      table.insert(out, best[1])
      table.insert(out, math.max(0, math.floor(best[2])))
      table.insert(out, reset_ms)
    else
      table.insert(out, -1); table.insert(out, -1); table.insert(out, -1)
    end
  end
  return out
end

if refused then
  local r = report(false)
  return {3, epoch, buckets[refused][4], buckets[refused][5], math.ceil(wait * 1000),
          tostring(buckets[refused][2]), buckets[refused][3],
          r[1], r[2], r[3], r[4], r[5], r[6]}
end

-- Requests in flight: the key's counted in the limits hash, the organization's are its holds.
local function too_many(scope, limit)
  local r = report(false)
  return {4, epoch, 'concurrency', scope, 1000, '1', limit, r[1], r[2], r[3], r[4], r[5], r[6]}
end
local in_flight = tonumber(states[5] or '0')
if key_lanes > 0 and in_flight >= key_lanes then
  return too_many('key', key_lanes)
end
local org_lanes = tonumber(ARGV[7])
if org_lanes > 0 and redis.call('HLEN', KEYS[5]) >= org_lanes then
  return too_many('organization', org_lanes)
end

-- Everything passed: take.
local writes = {}
for i, b in ipairs(buckets) do
  if b[3] > 0 then
    table.insert(writes, b[1])
    table.insert(writes, tostring(levels[i] - b[2]) .. ' ' .. tostring(now))
  end
end
local member = ARGV[1]
if key_lanes > 0 then
  table.insert(writes, slot_field)
  table.insert(writes, in_flight + 1)
  member = ARGV[1] .. ' ' .. kid
end
if #writes > 0 then
  redis.call('HSET', KEYS[3], unpack(writes))
  -- Idle buckets refill to full within a minute anyway; the in-flight count must outlive
  -- the longest request (settle.lua is given the same lifetime).
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[16]) + 60)
end
redis.call('DECRBY', KEYS[4], int(hold))
redis.call('HSET', KEYS[5], ARGV[1], int(hold))
redis.call('ZADD', KEYS[6], now + tonumber(ARGV[15]), member)

local r = report(true)
return {1, epoch, allowance, int(hold), redis.call('GET', KEYS[4]),
        r[1], r[2], r[3], r[4], r[5], r[6]}
