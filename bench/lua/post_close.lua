-- wrk script: POST a unique comment per request (unique content and email, so the
-- duplicate check never answers 409). Args: <nonce> <ours|isso> [thread key].
-- `tid` is set per thread by setup(), so every thread's counter makes distinct ids.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local counter = 0

function init(args)
  nonce = args[1] or tostring(os.time())
  mode = args[2] or "ours"
  thread_key = args[3] or "/bench/intake"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Connection"] = "close"
end

function request()
  counter = counter + 1
  local id = nonce .. "-" .. tostring(tid) .. "-" .. tostring(counter)
  local body
  if mode == "isso" then
    body = '{"text":"Benchmark comment ' .. id .. ': a few words about the article, nothing more.",'
      .. '"author":"Reader ' .. id .. '","email":"r' .. id .. '@example.org","title":"Bench thread"}'
  else
    body = '{"thread":"' .. thread_key .. '","author_name":"Reader ' .. id .. '",'
      .. '"author_email":"r' .. id .. '@example.org",'
      .. '"content":"Benchmark comment ' .. id .. ': a few words about the article, nothing more."}'
  end
  return wrk.format(nil, nil, nil, body)
end
