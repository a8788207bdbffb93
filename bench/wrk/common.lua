-- What every bench script shares: reading the inputs bench.py wrote, per-thread status
-- counts, and a done() that prints one JSON line for bench.py to parse (wrk's own text
-- output is for people; this is for the program).
--
-- Each wrk thread runs its own copy of the script; setup() and done() run in a separate
-- one. Only plain values and tables cross between them (thread:set / thread:get).

local common = {}

local threads = {}

-- Runs in the setup environment, once per thread: numbers the threads so that each can
-- take its own slice of the records.
function common.setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

-- The number of threads comes from bench.py (the -t it passed), not from counting setup()
-- calls: wrk runs a thread's init() before it sets up the next thread, so a count would
-- still be 1 in the first thread, which would then take every record.
thread_count = assert(tonumber(os.getenv("BENCH_THREADS")), "BENCH_THREADS is not set")

-- Per thread: responses by status, and failures the script itself noticed.
statuses = {}
script_errors = 0

function common.count(status)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

-- The lines of a file bench.py wrote (ids, cursors, "id version" pairs).
function common.lines(path)
  local out = {}
  local file = assert(io.open(path, "r"), "cannot open " .. path)
  for line in file:lines() do
    out[#out + 1] = line
  end
  file:close()
  return out
end

-- The headers given with -H (the Authorization header), plus `extra`.
function common.headers(extra)
  local h = {}
  for k, v in pairs(wrk.headers) do
    h[k] = v
  end
  for k, v in pairs(extra or {}) do
    h[k] = v
  end
  return h
end

-- GET /v1/contacts/{id} for every id of BENCH_IDS_FILE (one id a line).
function common.get_requests(headers)
  local out = {}
  for _, id in ipairs(common.lines(os.getenv("BENCH_IDS_FILE"))) do
    out[#out + 1] = wrk.format("GET", "/v1/contacts/" .. id, headers)
  end
  return out
end

-- GET /v1/contacts?limit=50 from every cursor of BENCH_CURSORS_FILE (an empty line is the
-- first page).
function common.list_requests(headers)
  local out = {}
  for _, cursor in ipairs(common.lines(os.getenv("BENCH_CURSORS_FILE"))) do
    local path = "/v1/contacts?limit=50"
    if cursor ~= "" then
      path = path .. "&cursor=" .. cursor -- bench.py wrote them URL-encoded
    end
    out[#out + 1] = wrk.format("GET", path, headers)
  end
  return out
end

-- The records a thread patches: its slice of BENCH_TARGETS_FILE ("id version" lines), kept
-- in a free list. take() hands out one that is not in flight with its version; answered()
-- puts back the record an answer names, with the version the answer carries (wrk does not
-- say which request an answer belongs to, but a record's body names its id).
local Targets = {}
Targets.__index = Targets

function common.targets()
  local t = setmetatable({ free = {}, version = {} }, Targets)
  for i, line in ipairs(common.lines(os.getenv("BENCH_TARGETS_FILE"))) do
    -- A slice per thread: no two threads ever touch the same record.
    if (i - 1) % thread_count == thread_index then
      local id, v = line:match("^(%S+)%s+(%d+)$")
      t.free[#t.free + 1] = id
      t.version[id] = tonumber(v)
    end
  end
  return t
end

function Targets:take()
  local id = table.remove(self.free)
  if id ~= nil then
    return id, self.version[id]
  end
end

function Targets:answered(body)
  -- Health answers and problems name no id; reads of other records are not ours. A record's
  -- own `"id"` key is its only one (references are `company_id`, `owner_id`, …), wherever the
  -- serializer puts it.
  local id = body:match('"id":"([0-9a-f%-]+)"')
  if id and self.version[id] then
    local v = body:match('"version":(%d+)')
    if v then
      self.version[id] = tonumber(v)
    end
    self.free[#self.free + 1] = id
  end
end

function common.seed()
  math.randomseed(os.time() * 1000 + (thread_index or 0) * 7919)
end

-- JSON for numbers, strings and tables with string keys: enough for the summary.
local function encode(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(k), encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return string.format("%q", value)
  elseif kind == "number" then
    return string.format("%.3f", value)
  elseif kind == "boolean" then
    return tostring(value)
  end
  return "null"
end

-- The summary bench.py reads: totals, latency percentiles (microseconds) and statuses.
function common.done(summary, latency, requests)
  local all_statuses = {}
  local errors_in_scripts = 0
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses") or {}) do
      all_statuses[status] = (all_statuses[status] or 0) + n
    end
    errors_in_scripts = errors_in_scripts + (t:get("script_errors") or 0)
  end
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    errors = summary.errors,
    statuses = all_statuses,
    script_errors = errors_in_scripts,
    latency_us = {
      mean = latency.mean,
      max = latency.max,
      p50 = latency:percentile(50),
      p90 = latency:percentile(90),
      p99 = latency:percentile(99),
    },
  }
  io.write("BENCH_JSON " .. encode(out) .. "\n")
end

return common
