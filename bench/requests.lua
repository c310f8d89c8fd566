-- wrk script: every thread cycles through its own file of pre-built requests, so that no
-- two requests of a run are the same message (the callback deduplicates by MsgId).
-- File <prefix>.<thread>.txt has one request a line: "<path with query>\t<body>".
-- A reply that is not 2xx or carries no <Encrypt> element counts as bad; every 100th reply
-- is kept in <prefix>.sample.<thread>.txt for the harness to decrypt and check.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local prefix = args[1]
  reqs = {}
  for line in io.lines(prefix .. "." .. id .. ".txt") do
    local tab = string.find(line, "\t", 1, true)
    local path = string.sub(line, 1, tab - 1)
    local body = string.sub(line, tab + 1)
    reqs[#reqs + 1] = wrk.format("POST", path, { ["Content-Type"] = "text/xml" }, body)
  end
  i = 0
  seen = 0
  bad = 0
  wrapped = 0
  sample = io.open(prefix .. ".sample." .. id .. ".txt", "w")
end

function request()
  i = i + 1
  if i > #reqs then
    i = 1
    wrapped = wrapped + 1
  end
  return reqs[i]
end

function response(status, headers, body)
  seen = seen + 1
  if status < 200 or status > 299 or not string.find(body, "<Encrypt>", 1, true) then
    bad = bad + 1
  end
  if seen % 100 == 1 then
    sample:write(#body, "\n", body, "\n")
    sample:flush()
  end
end

function done(summary, latency, requests)
  local bad_total, wrapped_total = 0, 0
  for _, t in ipairs(threads) do
    bad_total = bad_total + t:get("bad")
    wrapped_total = wrapped_total + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "bad_replies": %d, '
      .. '"wrapped": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    bad_total, wrapped_total, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
