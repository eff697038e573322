-- wrk script: POST /start as fast as possible (Bearer only, no PoP: the contract allows it on /start).
-- Usage: TOKEN=$(yna-tool --data-dir D token --msisdn 14250000001) wrk -t2 -c64 -d10s -s tools/bench/start.lua http://127.0.0.1:PORT
wrk.method = "POST"
wrk.path = "/start"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"from":"14250000001","to":"14250000002","sdp":"v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 RTP/AVP 0\\r\\n"}'

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
  for k, v in pairs(codes) do io.write(string.format("status %d: %d\n", k, v)) end
end
