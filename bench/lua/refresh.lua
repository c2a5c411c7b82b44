-- POST /token grant_type=refresh_token. Refresh tokens rotate and a reused one
-- revokes its family, so every request spends a fresh token from the pool
-- (bench/flows.py tokens). Thread i of n takes lines i, i+n, i+2n, ...
-- When a thread's share runs out it sends a token that does not exist (400),
-- and done() reports how many requests were such filler: the run is then
-- invalid and needs a bigger pool (BENCH_REFRESH_POOL) or a shorter run.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local threads, counter = {}, 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  auth = common.basic()
  tokens, nexti, exhausted = {}, 1, 0
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS") .. "/refresh_tokens") do
    if #line > 0 then
      if i % nthreads == id then table.insert(tokens, line) end
      i = i + 1
    end
  end
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = auth }
end

function request()
  local token = tokens[nexti]
  if token == nil then
    exhausted = exhausted + 1
    token = "pool-exhausted"
  else
    nexti = nexti + 1
  end
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("exhausted") or 0) end
  io.write(string.format("refresh pool exhausted requests: %d\n", total))
end
