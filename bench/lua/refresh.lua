-- POST /token grant_type=refresh_token, as a client really refreshes: each
-- response's new refresh token is the one sent next (rotation; reusing a
-- spent one would revoke its family). Every wrk thread starts with its own
-- slice of the pool (bench/flows.py tokens; thread i of n takes lines i,
-- i+n, ...) and keeps a queue of live tokens: request() takes the oldest,
-- response() adds the one it received. A slice larger than the thread's
-- connections never runs dry while responses succeed. If the queue is empty
-- anyway, a token that does not exist is sent (400) and done() reports these
-- filler requests: the run is then invalid.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local threads, counter = {}, 0
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  queue, head, tail, exhausted, lost = {}, 1, 0, 0, 0
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS") .. "/refresh_tokens") do
    if #line > 0 then
      if i % nthreads == id then
        tail = tail + 1
        queue[tail] = line
      end
      i = i + 1
    end
  end
  headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = common.basic() }
end

function request()
  local token = "pool-exhausted"
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  else
    exhausted = exhausted + 1
  end
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = status == 200 and body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then
    tail = tail + 1
    queue[tail] = token
  else
    lost = lost + 1
  end
end

function done(summary, latency, requests)
  local total, gone = 0, 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("exhausted") or 0)
    gone = gone + (thread:get("lost") or 0)
  end
  io.write(string.format("refresh pool exhausted requests: %d\n", total))
  io.write(string.format("refresh responses without a new token: %d\n", gone))
end
