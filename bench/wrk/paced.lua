-- wrk script for latency at a fixed offered load: each connection waits about FB_PACE_MS
-- milliseconds (drawn from ±25 % so that connections do not march in step) before each
-- request, so the load is connections / pace instead of as much as the machine can take.
-- wrk times each request from its first byte written to its answer read, without the wait.

local pace = tonumber(os.getenv("FB_PACE_MS") or "10")
local low, high = math.max(1, math.floor(pace * 0.75)), math.max(1, math.ceil(pace * 1.25))

function delay()
   return math.random(low, high)
end

-- done(): the machine-readable report of report.lua, loaded from beside this script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
