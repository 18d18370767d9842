-- wrk script for tools/bench-server: one 200-byte event per POST to one of
-- STREAMS streams picked at random, over wrk's keep-alive connections; done()
-- prints one JSON line with the rate, latency percentiles and errors.
local streams = tonumber(os.getenv("BENCH_STREAMS") or "10000")
local size = tonumber(os.getenv("BENCH_EVENT_SIZE") or "200")
local store = os.getenv("BENCH_STORE") or "bench"
-- data is a JSON string of `size` bytes, quotes included
local body = '{"type":"BenchEvent","data":"' .. string.rep("x", size - 2) .. '"}'
local headers = { ["Content-Type"] = "application/json" }
local prefix = "/stores/" .. store .. "/streams/bench-"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  return wrk.format("POST", prefix .. math.random(0, streams - 1), headers, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"requestsPerSecond":%.1f,"p50Ms":%.3f,"p99Ms":%.3f,"p999Ms":%.3f,"non2xx":%d,"socketErrors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
