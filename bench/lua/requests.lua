-- wrk script of bench/run.py. Environment:
--   BENCH_METHOD  GET or POST
--   BENCH_PATHS   file of request paths, one a line: each request picks one at random
--   BENCH_PATH    the path when BENCH_PATHS is not given
--   BENCH_BODY    file whose content is the body of every request (POST, Prefer: return=minimal)
--   BENCH_OUT     file where done() writes the summary and latency percentiles as JSON (µs)
--   BENCH_TOKEN   bearer token sent as Authorization on every request (when not empty)
--   BENCH_COOKIE  Cookie header sent on every request (a portal session), when not empty

local paths = {}
local method = "GET"
local headers = { ["Accept"] = "application/fhir+json" }
local body = nil
local fixed = nil
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  local cookie = os.getenv("BENCH_COOKIE")
  if cookie and cookie ~= "" then
    headers["Cookie"] = cookie
    headers["Accept"] = "text/html"
  end
  local body_file = os.getenv("BENCH_BODY")
  if body_file and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    body = f:read("*a")
    f:close()
    headers["Content-Type"] = "application/fhir+json"
    headers["Prefer"] = "return=minimal"
  end
  local paths_file = os.getenv("BENCH_PATHS")
  if paths_file and paths_file ~= "" then
    for line in io.lines(paths_file) do
      if #line > 0 then
        paths[#paths + 1] = line
      end
    end
  end
  math.randomseed(os.time() + 7919 * (tid or 0))
  if #paths == 0 then
    fixed = wrk.format(method, os.getenv("BENCH_PATH") or "/", headers, body)
  end
end

function request()
  if fixed then
    return fixed
  end
  return wrk.format(method, paths[math.random(#paths)], headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  f:write(string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean
  ))
  f:close()
end
