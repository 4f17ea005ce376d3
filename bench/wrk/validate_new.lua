-- validateLicense with a new machine fingerprint on every request (activates a seat).
-- BENCH_KEYS: comma-separated license keys with many seats, used round robin.
local keys = {}
for k in string.gmatch(os.getenv("BENCH_KEYS"), "[^,]+") do keys[#keys + 1] = k end
local counter = 0
local salt = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
local run = os.getenv("BENCH_RUN") or "r"
request = function()
  counter = counter + 1
  local key = keys[(counter % #keys) + 1]
  local body = string.format(
    '{"license_key":"%s","fingerprint":"new-%s-%s-%d","hostname":"bench-new"}',
    key, run, salt, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
