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

-- done(): the machine-readable report of report.lua, loaded from beside this script.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
