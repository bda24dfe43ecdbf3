-- One fixed body for every request (wrk's static request: no Lua per request).
-- Usage: wrk -s post.lua URL -- BODY_FILE ROWS [CONTENT_TYPE]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or ""
dofile(here .. "common.lua")

function init(args)
   local file = assert(io.open(args[1], "rb"))
   wrk.body = file:read("*a")
   file:close()
   rows = tonumber(args[2])
   if args[3] then
      wrk.headers["Content-Type"] = args[3]
   end
end

function mean_rows(threads)
   return threads[1]:get("rows")
end
