-- POST /token grant_type=client_credentials, HTTP Basic of the demo client.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=openid"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = common.basic()
wrk.path = "/token"
