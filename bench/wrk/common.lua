-- Shared by post.lua and mixed.lua (loaded with dofile): POSTs JSON, counts non-2xx
-- answers per thread, and in done() prints the one line bench/load.py parses:
--   BENCH_RESULT {"requests": ..., "p99_ms": ..., "mean_rows": ...}
-- wrk's own status error counts only 4xx/5xx; we count everything outside 2xx.
-- Each script defines mean_rows(threads): rows per request, for rows/s.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local threads = {}
non_2xx = 0

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
end

function done(summary, latency, requests)
   local non_2xx_total = 0
   for _, thread in ipairs(threads) do
      non_2xx_total = non_2xx_total + thread:get("non_2xx")
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_s":%.6f,"non_2xx":%d,"connect":%d,"read":%d,'
         .. '"write":%d,"timeout":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,'
         .. '"max_ms":%.3f,"mean_rows":%.4f}\n',
      summary.requests, summary.duration / 1e6, non_2xx_total, errors.connect, errors.read,
      errors.write, errors.timeout, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
      latency:percentile(99) / 1e3, latency.max / 1e3, mean_rows(threads)))
end
