-- POST /introspect token=<access token>, HTTP Basic of the client it was issued to.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/introspect"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = common.basic()
wrk.body = "token_type_hint=access_token&token=" .. common.read_first_line(os.getenv("BENCH_TOKENS") .. "/access_token")
