-- GET /userinfo with one bearer access token (access tokens are reusable).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.path = "/userinfo"
wrk.headers["Authorization"] = "Bearer " .. common.read_first_line(os.getenv("BENCH_TOKENS") .. "/access_token")
