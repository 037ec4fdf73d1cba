-- wrk script for scripts/bench-web figures without the page cache: wrk -s scripts/wrk-fresh.lua URL?...
-- Every request a new URL (an ignored parameter), so the server renders each one afresh.
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. "&fresh=" .. counter)
end
