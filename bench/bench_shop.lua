-- wrk script of the shop benchmarks: every thread sends each line of its own file once
-- ("<method>\t<path>\t<headers joined by |>\t<body>") and stops. A reply counts as ok when
-- its status is the one given as the second argument (e.g. 303 for a placed order, 201 for
-- a till order); other statuses are counted by class. Once a thread's lines are all sent,
-- its other connections ask for the idle path (the third argument) until the last answers
-- are in: never a line twice (a checkout sent again would be a replay). A thread whose
-- lines are all answered writes "<prefix>.done.<id>"; the runner then ends wrk (SIGINT).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  local want
  prefix, want = args[1], tonumber(args[2])
  finished = false
  ok_status = want
  idle = wrk.format("GET", args[3])
  reqs = {}
  for line in io.lines(prefix .. "." .. id .. ".txt") do
    local parts = {}
    for part in string.gmatch(line .. "\t", "([^\t]*)\t") do parts[#parts + 1] = part end
    local headers = {}
    for h in string.gmatch(parts[3], "[^|]+") do
      local c = string.find(h, ":", 1, true)
      headers[string.sub(h, 1, c - 1)] = string.sub(h, c + 1)
    end
    reqs[#reqs + 1] = wrk.format(parts[1], parts[2], headers, parts[4])
  end
  i = 0
  first = true
  answered = 0
  ok = 0
  c409 = 0
  other = 0
end

function request()
  -- wrk calls request() once more in the first thread to check the script: that call (and
  -- the first request of every other thread) gets the idle path, so no line is lost.
  if first then
    first = false
    return idle
  end
  i = i + 1
  if i > #reqs then return idle end
  return reqs[i]
end

function response(status, headers, body)
  if status == 200 and ok_status ~= 200 then return end  -- the idle path
  answered = answered + 1
  if status == ok_status then
    ok = ok + 1
  elseif status == 409 then
    c409 = c409 + 1
  else
    other = other + 1
  end
  if answered >= #reqs and not finished then
    finished = true
    io.open(prefix .. ".done." .. id, "w"):close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t_ok, t_409, t_other = 0, 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_409 = t_409 + t:get("c409")
    t_other = t_other + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "ok": %d, "conflicts": %d, "other": %d, '
      .. '"errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, t_ok, t_409, t_other,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
