-- wrk script: POST the JSON body in $BENCH_BODY (with $BENCH_AUTH as Authorization if set)
-- and print one line "BENCH_JSON {...}" with exact latency percentiles (microseconds).
--   BENCH_BODY='{"model":"demo-small","messages":[...]}' \
--     wrk -t1 -c32 -d10s -s bench/wrk_post.lua http://127.0.0.1:9190/v1/chat/completions
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
