-- wrk script: POST a unique comment per request (unique content and email, so the
-- duplicate check never answers 409). Args: <nonce> <ours|isso> [thread key].
-- `tid` is set per thread by setup(), so every thread's counter makes distinct ids.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  nonce = args[1] or tostring(os.time())
  mode = args[2] or "ours"
  thread_key = args[3] or "/bench/intake"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
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

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
