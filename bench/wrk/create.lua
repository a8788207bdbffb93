-- POST /v1/contacts: a new contact each time, with an email no other request uses
-- (BENCH_RUN makes it unique across runs, the thread index and a counter within one).
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local headers
local run
local regions = { "华东", "华北", "华南", "华中", "西南", "西北", "东北", "海外" }
local n = 0

function init(args)
  common.seed()
  headers = common.headers({ ["Content-Type"] = "application/json" })
  run = os.getenv("BENCH_RUN") or tostring(os.time())
end

function request()
  n = n + 1
  local body = string.format(
    '{"first_name":"Bench","last_name":"Create %d","email":"create.%s.%d.%d@bench.example",'
      .. '"lifecycle_stage":"lead","phones":[{"number":"+86 138 %04d %04d","kind":"mobile"}],'
      .. '"custom":{"region":"%s"}}',
    n, run, thread_index, n, thread_index, n % 10000, regions[(n % #regions) + 1])
  return wrk.format("POST", "/v1/contacts", headers, body)
end

function response(status, headers, body)
  common.count(status)
end
