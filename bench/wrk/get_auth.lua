-- GET with a bearer token (BENCH_TOKEN): listProjects and getCurrentUser.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
