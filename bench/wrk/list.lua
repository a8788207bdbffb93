-- GET /v1/contacts?limit=50, starting at cursors drawn at random from BENCH_CURSORS_FILE
-- (an empty line is the first page): pages from all over the table, not one hot page.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local requests = {}

function init(args)
  common.seed()
  requests = common.list_requests(common.headers())
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  common.count(status)
end
