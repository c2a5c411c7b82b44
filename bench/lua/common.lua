-- Shared helpers for the benchmark's wrk scripts (loaded with dofile).
local M = {}

function M.b64(data)
  local chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d?%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

function M.basic()
  local id = assert(os.getenv("BENCH_CLIENT_ID"), "BENCH_CLIENT_ID")
  local secret = assert(os.getenv("BENCH_CLIENT_SECRET"), "BENCH_CLIENT_SECRET")
  return "Basic " .. M.b64(id .. ":" .. secret)
end

function M.read_first_line(path)
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  local line = f:read("*l")
  f:close()
  return line
end

return M
