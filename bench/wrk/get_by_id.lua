-- GET /v1/contacts/{id} for ids drawn at random from BENCH_IDS_FILE (one id a line, spread
-- over the whole table so that the reads are not all served from a few hot pages).
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local requests = {}

function init(args)
  common.seed()
  requests = common.get_requests(common.headers())
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  common.count(status)
end
