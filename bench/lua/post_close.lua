-- wrk script: post.lua, with every request asking the server to close its connection.
-- bench/worker_class.py: sync workers never keep a connection open, so gthread workers
-- must not either, or keep-alive is what gets measured. Args as post.lua's.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "post.lua")
local post_init = init

function init(args)
  post_init(args)
  wrk.headers["Connection"] = "close"
end
