-- One fixed request, over and over: GET of the URL on the command line, or POST of a JSON
-- body (BENCH_METHOD, BENCH_BODY_FILE). For /health/live, a list page, a search, and the
-- single-client scale queries.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local prepared

function init(args)
  local method = os.getenv("BENCH_METHOD") or "GET"
  local body_file = os.getenv("BENCH_BODY_FILE")
  local body = nil
  local extra = {}
  if body_file and body_file ~= "" then
    body = table.concat(common.lines(body_file), "\n")
    extra["Content-Type"] = "application/json"
  end
  -- Built once: building a request costs the load generator CPU the server needs.
  prepared = wrk.format(method, wrk.path, common.headers(extra), body)
end

function request()
  return prepared
end

function response(status, headers, body)
  common.count(status)
end
