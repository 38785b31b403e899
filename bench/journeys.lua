-- wrk script for `python -m bench`: cycles through the (cookie, path) pairs in the file named by the
-- environment variable BENCH_REQUESTS (one "cookie<TAB>path" a line; htmx requests start with "hx ";
-- "cookie<TAB>path<TAB>body" is a form POST of that body)
-- and prints p50/p95/p99 and the counts as one JSON line at the end. With BENCH_THINK_MS="low-high"
-- each connection is a person who reads every page low to high milliseconds (uniformly at random)
-- before asking for the next.
local pairs_file = os.getenv("BENCH_REQUESTS")
local requests = {}
local next_request = 1

local think = os.getenv("BENCH_THINK_MS") or ""
local think_low, think_high = think:match("^(%d+)-(%d+)$")
if think_low then
  think_low, think_high = tonumber(think_low), tonumber(think_high)
  function delay()
    return math.random(think_low, think_high)
  end
end

function init(args)
  for line in io.lines(pairs_file) do
    local cookie, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = { ["Cookie"] = cookie, ["Accept-Encoding"] = "gzip, br" }
    if path:sub(1, 3) == "hx " then
      path = path:sub(4)
      headers["HX-Request"] = "true"
    end
    if body ~= "" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      requests[#requests + 1] = wrk.format("POST", path, headers, body)
    else
      requests[#requests + 1] = wrk.format("GET", path, headers)
    end
  end
  next_request = math.random(#requests)
end

function request()
  local chosen = requests[next_request]
  next_request = next_request % #requests + 1
  return chosen
end

function done(summary, latency, requests_seen)
  local errors = summary.errors
  io.write(string.format(
    '\nBENCH {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, ' ..
    '"non_2xx_3xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
