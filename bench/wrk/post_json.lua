-- POST a fixed JSON body (BENCH_BODY) with headers; validateLicense (activated) and login.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
