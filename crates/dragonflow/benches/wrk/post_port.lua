-- wrk script: POST /v2.0/ports on the network named by DF_NETWORK_ID, then one summary
-- line for the `api_wrk` bench (crates/dragonflow/benches/api_wrk.rs) to read.
--   DF_NETWORK_ID=<id> wrk -c16 -t2 -d5s -s post_port.lua http://127.0.0.1:9696/v2.0/ports
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"port": {"network_id": "' .. os.getenv("DF_NETWORK_ID") .. '"}}'

function done(summary, latency, requests)
  local e = summary.errors
  -- Latencies are in microseconds; status errors are answers >= 400.
  io.write(string.format(
    "DFWRK requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
