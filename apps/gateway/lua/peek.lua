-- Peek: what a key's limits look like now, for the x-ratelimit-* headers of an answer given
-- before admission (a request refused as invalid, say). Reads, takes nothing.
--
-- KEYS: 1 limits hash (limits_state.lua, prepended to this script)
-- ARGV: 1 key rpm  2 key tpm  3 org rpm  4 org tpm (0: none)  5 the API key id
-- Returns the six report values of limits_report.

local now = redis_now()
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local packed = redis.call('HMGET', KEYS[1], 'k' .. ARGV[5], 'o')
local levels = bucket_levels(packed[1], packed[2], limits, now)
return limits_report(levels, limits, nil)
