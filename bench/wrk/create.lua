-- wrk script for create (POST) cases: every request creates an organization with a unique
-- name "<prefix>-t<thread>-<n>". Settings come from the environment:
--   FB_CREATE_DIALECT  gitea  -> POST {"username": name}            (Gitea  /api/v1/orgs)
--                      github -> POST {"login": name, "admin": "admin"} (GitHub /api/v3/admin/organizations)
--   FB_CREATE_PATH     request path
--   FB_CREATE_PREFIX   name prefix, unique per run/case
--   FB_CREATE_TOKEN    token of the site administrator
-- The number of creates is bounded by wrk's duration (-d); bench.py reports the count.

local counter = 0
local threads = {}

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local dialect = os.getenv("FB_CREATE_DIALECT") or "gitea"
local path = os.getenv("FB_CREATE_PATH") or "/api/v1/orgs"
local prefix = os.getenv("FB_CREATE_PREFIX") or "bench"
local token = os.getenv("FB_CREATE_TOKEN") or "forgebridge-admin-token"
local headers = {
   ["Authorization"] = "token " .. token,
   ["Content-Type"] = "application/json",
}
local n = 0

function request()
   n = n + 1
   local name = prefix .. "-t" .. tostring(tid) .. "-" .. tostring(n)
   local body
   if dialect == "github" then
      body = '{"login":"' .. name .. '","admin":"admin"}'
   else
      body = '{"username":"' .. name .. '"}'
   end
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
