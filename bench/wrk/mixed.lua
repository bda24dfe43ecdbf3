-- Scenario D: each request picks one of the pre-built bodies at random.
-- Usage: wrk -s mixed.lua URL -- BODIES_FILE, one body a line as "<rows> <json>".
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or ""
dofile(here .. "common.lua")

local bodies = {}
sent_requests = 0
sent_rows = 0

function init(args)
   for line in io.lines(args[1]) do
      local rows, json = line:match("^(%d+) (.+)$")
      table.insert(bodies, { rows = tonumber(rows), request = wrk.format(nil, nil, nil, json) })
   end
   math.randomseed(id)
end

function request()
   local body = bodies[math.random(#bodies)]
   sent_requests = sent_requests + 1
   sent_rows = sent_rows + body.rows
   return body.request
end

-- The realised mean over what was sent (50.5 rows expected for sizes 1..100).
function mean_rows(threads)
   local requests, rows = 0, 0
   for _, thread in ipairs(threads) do
      requests = requests + thread:get("sent_requests")
      rows = rows + thread:get("sent_rows")
   end
   return requests > 0 and rows / requests or 0
end
