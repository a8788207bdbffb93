-- A mix of what a CRM frontend does, for the memory check and the soak: reads by id,
-- list pages, searches, creates and If-Match patches (weights in `mix`). The inputs are
-- those of get_by_id.lua, list.lua and patch.lua; the ids read are never the ids patched,
-- so that an answer naming a patched record always belongs to its PATCH.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require("common")

setup = common.setup
done = common.done

local mix = { get = 40, list = 20, search = 15, create = 10, patch = 15 }
local regions = { "华东", "华北", "华南", "华中", "西南", "西北", "东北", "海外" }
local stages = { "lead", "customer", "opportunity" }

local get_headers, json_headers
local gets, lists, searches = {}, {}, {}
local targets
local run
local n = 0
local wheel = {}

function init(args)
  common.seed()
  run = os.getenv("BENCH_RUN") or tostring(os.time())
  get_headers = common.headers()
  json_headers = common.headers({ ["Content-Type"] = "application/json" })
  gets = common.get_requests(get_headers)
  lists = common.list_requests(get_headers)
  for _, region in ipairs(regions) do
    for _, stage in ipairs(stages) do
      local body = string.format(
        '{"filter":{"and":[{"field":"custom.region","op":"eq","value":"%s"},'
          .. '{"field":"lifecycle_stage","op":"eq","value":"%s"}]},"limit":50}', region, stage)
      searches[#searches + 1] = wrk.format("POST", "/v1/contacts/search", json_headers, body)
    end
  end
  targets = common.targets()
  -- A wheel of 100 slots in the proportions of `mix`, drawn from at random.
  for kind, weight in pairs(mix) do
    for _ = 1, weight do
      wheel[#wheel + 1] = kind
    end
  end
end

local function create()
  n = n + 1
  local body = string.format(
    '{"first_name":"Soak","last_name":"Create %d","email":"mixed.%s.%d.%d@bench.example",'
      .. '"lifecycle_stage":"lead","custom":{"region":"%s"}}',
    n, run, thread_index, n, regions[(n % #regions) + 1])
  return wrk.format("POST", "/v1/contacts", json_headers, body)
end

local function patch()
  local id, version = targets:take()
  if id == nil then
    return nil
  end
  n = n + 1
  json_headers["If-Match"] = '"' .. version .. '"'
  local req = wrk.format("PATCH", "/v1/contacts/" .. id, json_headers,
    string.format('{"title":"Soak %d"}', n))
  json_headers["If-Match"] = nil
  return req
end

function request()
  local kind = wheel[math.random(#wheel)]
  if kind == "patch" then
    local req = patch()
    if req then
      return req
    end
    kind = "get" -- every record is in flight: read instead
  end
  if kind == "create" then
    return create()
  elseif kind == "list" then
    return lists[math.random(#lists)]
  elseif kind == "search" then
    return searches[math.random(#searches)]
  end
  return gets[math.random(#gets)]
end

function response(status, headers, body)
  common.count(status)
  targets:answered(body)
end
