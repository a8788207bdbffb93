-- PATCH /v1/contacts/{id} with If-Match. Each in-flight request has a record of its own: a
-- thread keeps its records (its slice of BENCH_TARGETS_FILE, "id version" lines) in a free
-- list, takes one per request and puts it back, with the version the answer carries, when
-- the answer arrives. wrk does not say which request an answer belongs to, but the answer's
-- body names the record. A 412 would mean two requests raced on one record: the bench is
-- wrong, and bench.py fails the run.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local headers
local targets
local n = 0

function init(args)
  common.seed()
  headers = common.headers({ ["Content-Type"] = "application/json" })
  targets = common.targets()
end

function request()
  local id, version = targets:take()
  if id == nil then
    -- More connections than records: a bench misconfiguration, counted as an error.
    script_errors = script_errors + 1
    return wrk.format("GET", "/health/live", headers)
  end
  n = n + 1
  headers["If-Match"] = '"' .. version .. '"'
  local body = string.format('{"title":"Engineer %d"}', n)
  return wrk.format("PATCH", "/v1/contacts/" .. id, headers, body)
end

function response(status, headers, body)
  common.count(status)
  targets:answered(body)
end
