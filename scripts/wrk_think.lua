-- wrk script: every connection waits a random think time before each
-- request, uniform between the two arguments in milliseconds (default
-- 0-200), so 200 connections send about 2,000 requests a second at
-- independent moments, the way 200 screens and scripts polling a kiosk do,
-- instead of all at once (wrk's closed loop) or in step (hey -q).
-- Usage: wrk -c200 -s scripts/wrk_think.lua URL -- [min_ms max_ms]
local lo, hi = 0, 200
local threads = 0

-- setup runs in the main state, once per thread: give each its own seed.
function setup(thread)
	threads = threads + 1
	thread:set("seed", os.time() * 100 + threads)
end

function init(args)
	if #args >= 2 then
		lo, hi = tonumber(args[1]), tonumber(args[2])
	end
	math.randomseed(seed)
end

function delay()
	return math.random(lo, hi)
end
