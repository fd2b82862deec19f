-- Shared by admit.lua, settle.lua and peek.lua (prepended to each when it is loaded): Redis'
-- clock, integers as text, and the tenant's limits hash. Field `k<key id>` holds the key's
-- buckets, `o` the organization's, each packed with struct as five doubles (STATE): requests
-- left, the Redis time of that reading, tokens left, the time of that reading, requests in
-- flight (the key's; the organization's are its holds). Packed numbers cost nothing to read
-- and write, where text conversions (tostring, tonumber) were the larger part of the
-- limiter's time. A bucket without a limit is stored as HUGE, so it starts full once a limit
-- is set. Field `x` is the time until which the hash's expiry is set (see write_limits).

local HUGE = math.huge
local STATE = 'ddddd'
local EXPIRY_REFRESH_S = 120

-- Redis' time in seconds (never the worker's clock).
local function redis_now()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end

-- An integer as exact decimal text (for INCRBY, DECRBY and replies).
local function int(x) return string.format('%.0f', x) end

-- A packed bucket state (nil: none yet, so full buckets at `now`, nothing in flight) as
-- requests left, its time, tokens left, its time, requests in flight.
local function unpack_state(packed, now)
  if not packed then return HUGE, now, HUGE, now, 0 end
  return struct.unpack(STATE, packed)
end

-- What a bucket of `limit` per minute holds at `now`, last read as `level` at `at`; nil when
-- it has no limit.
local function refilled(level, at, limit, now)
  if limit <= 0 then return nil end
  return math.min(limit, level + (now - at) * limit / 60)
end

-- What the four buckets hold at `now` (key requests, key tokens, organization requests,
-- organization tokens; nil for a bucket without a limit) from the packed key and organization
-- fields (nil when absent), and the key's requests in flight.
local function bucket_levels(key_state, org_state, limits, now)
  local levels, in_flight = {}, 0
  local states = {key_state, org_state}
  for scope = 1, 2 do
    local requests, requests_at, tokens_left, tokens_at, count = unpack_state(states[scope], now)
    if scope == 1 then in_flight = count end
    levels[2 * scope - 1] = refilled(requests, requests_at, limits[2 * scope - 1], now)
    levels[2 * scope] = refilled(tokens_left, tokens_at, limits[2 * scope], now)
  end
  return levels, in_flight
end

-- For the x-ratelimit-* headers: per kind (requests, then tokens) the limited bucket with the
-- least left once `wants` (per bucket; nil: nothing) is taken: its limit, what is left, and
-- the milliseconds until it is full again; -1, -1, -1 for a kind without a limit.
local function limits_report(levels, limits, wants)
  local out = {}
  for kind = 1, 2 do
    local limit, left = -1, nil
    for i = kind, 4, 2 do
      if levels[i] then
        local after = levels[i] - (wants and wants[i] or 0)
        if left == nil or after < left then limit, left = limits[i], after end
      end
    end
    if left then
      out[#out + 1] = limit
      out[#out + 1] = math.max(0, math.floor(left))
      out[#out + 1] = math.ceil((limit - left) * 60000 / limit)
    else
      out[#out + 1] = -1; out[#out + 1] = -1; out[#out + 1] = -1
    end
  end
  return out
end

-- HSET the fields and values given into the limits hash, which must then outlive this write by
-- `keep` seconds (buckets refill to full within a minute; a request's slot lives as long as
-- its hold). EXPIRE is sent only when the expiry last set (`set_until`, field `x` as read)
-- would come too soon, so about every EXPIRY_REFRESH_S rather than on every write.
local function write_limits(hash, set_until, keep, now, ...)
  local until_time = set_until and struct.unpack('d', set_until)
  if until_time and until_time >= now + keep then
    redis.call('HSET', hash, ...)
    return
  end
  redis.call('HSET', hash, 'x', struct.pack('d', now + keep + EXPIRY_REFRESH_S), ...)
  redis.call('EXPIRE', hash, math.ceil(keep + EXPIRY_REFRESH_S))
end

