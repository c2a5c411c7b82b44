-- The soak's mixed traffic (bench/soak.py), round robin per thread:
-- discovery, JWKS, client_credentials, introspection of a client_credentials
-- token (BENCH_ACCESS_TOKEN), /healthz.
-- With BENCH_DELAY_MS set, each connection waits that long before each
-- request, which holds the rate near connections * 1000 / (delay + latency):
-- the soak runs at a fixed fraction of the measured capacity.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function init(args)
  local basic = common.basic()
  local form = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = basic }
  local token = assert(os.getenv("BENCH_ACCESS_TOKEN"), "BENCH_ACCESS_TOKEN")
  mix = {
    wrk.format("GET", "/.well-known/openid-configuration"),
    wrk.format("GET", "/jwks"),
    wrk.format("POST", "/token", form, "grant_type=client_credentials"),
    wrk.format("POST", "/introspect", form, "token=" .. token),
    wrk.format("GET", "/healthz"),
  }
  n = 0
end

function request()
  n = n + 1
  return mix[(n % #mix) + 1]
end

if pause > 0 then
  function delay()
    return pause
  end
end
