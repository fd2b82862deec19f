-- Shared by admit.lua and settle.lua (prepended to each when it is loaded): the tenant's limits
-- hash. Field `k<key id>` holds the key's buckets, `o` the organization's, each packed with
-- struct as five doubles (STATE): requests left, the Redis time of that reading, tokens left,
-- the time of that reading, requests in flight (the key's; the organization's are its holds).
-- Packed numbers cost nothing to read and write, where text conversions (tostring, tonumber)
-- were the larger part of the limiter's time. A bucket without a limit is stored as HUGE, so
-- it starts full once a limit is set. Field `x` is the time until which the hash's expiry is
-- set (see write_limits).

local HUGE = math.huge
local STATE = 'ddddd'
local EXPIRY_REFRESH_S = 120

-- What a bucket of `limit` per minute holds at `now`, last read as `level` at `at`; nil when
-- it has no limit.
local function refilled(level, at, limit, now)
  if limit <= 0 then return nil end
  return math.min(limit, level + (now - at) * limit / 60)
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

