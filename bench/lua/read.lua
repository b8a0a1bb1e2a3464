-- wrk script: GET paths listed in a file (one per line), round robin, each thread
-- starting at a different place. Args: <file of paths>.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(paths, line) end
  end
  idx = ((tid or 1) * 37) % #paths
end

function request()
  idx = idx % #paths + 1
  return wrk.format("GET", paths[idx])
end
