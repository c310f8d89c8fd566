-- wrk script of the points-mall exchange benchmark: every thread cycles through its own
-- file of pre-built requests "<path>\t<cookie>\t<body>" (a member's session and a fresh
-- idempotency key each). A reply redirecting to the member's coupons is an exchange; any
-- other reply counts as refused.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local prefix = args[1]
  reqs = {}
  for line in io.lines(prefix .. "." .. id .. ".txt") do
    local a = string.find(line, "\t", 1, true)
    local b = string.find(line, "\t", a + 1, true)
    local path = string.sub(line, 1, a - 1)
    local cookie = string.sub(line, a + 1, b - 1)
    local body = string.sub(line, b + 1)
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = cookie,
    }, body)
  end
  i = 0
  ok = 0
  bad = 0
  wrapped = 0
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
  local loc = headers["Location"] or headers["location"] or ""
  if status == 303 and string.find(loc, "/coupons", 1, true) then
    ok = ok + 1
  elseif status ~= 200 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, wrapped_total = 0, 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    wrapped_total = wrapped_total + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "bad_replies": %d, "wrapped": %d, '
      .. '"errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, ok_total, bad_total, wrapped_total,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
