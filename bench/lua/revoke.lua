-- POST /revoke token=<access token>, HTTP Basic of the client it was issued to.
-- The first request revokes the token; every later one revokes it again,
-- which RFC 7009 2.2 answers 200 as well: the run measures what every
-- revocation costs (client authentication, the lookup by digest, the
-- conditional update), on both servers alike. It runs last, since it spends
-- the access token the UserInfo and introspection scenarios use.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/revoke"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = common.basic()
wrk.body = "token_type_hint=access_token&token=" .. common.read_first_line(os.getenv("BENCH_TOKENS") .. "/access_token")
