#!/usr/bin/env bash
# Group commit under load: starts yna-engine on a temporary data folder (fsync on),
# drives POST /start with wrk at C connections for D seconds, and prints requests/s,
# log writes, events per write (mean, and the median's histogram bucket), and the
# sync time per write, read from the engine's /metrics.
# Usage: tools/bench/group-commit.sh [BUILD_DIR] [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}; C=${2:-64}; D=${3:-10}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)"; exit 2; }
DATA=$(mktemp -d)
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
"$BUILD/transport/yna-engine" --listen 127.0.0.1:0 --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-calls-per-number 0 --max-ringing-per-number 0 >"$DATA/out" 2>"$DATA/err" &
PID=$!
for _ in $(seq 100); do grep -q listening "$DATA/out" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep -o '[0-9]*$' "$DATA/out")
export TOKEN=$("$BUILD/tools/yna-tool" --data-dir "$DATA" token --msisdn 14250000001 --ttl 3600 --no-pop-key)
echo "engine pid $PID on port $PORT; wrk -t2 -c$C -d${D}s POST /start" >&2
WRK=$(wrk -t2 -c"$C" -d"${D}s" -s tools/bench/start.lua "http://127.0.0.1:$PORT")
RPS=$(echo "$WRK" | awk '/Requests\/sec/ {print $2}')
NON2XX=$(echo "$WRK" | awk '/Non-2xx/ {print $NF}')
M=$(curl -s "http://127.0.0.1:$PORT/metrics")
awk -v rps="$RPS" -v non2xx="${NON2XX:-0}" '
  /^yna_commit_batch_events_bucket/ { match($0, /le="[^"]+"/); le = substr($0, RSTART+4, RLENGTH-5); b[n]=le; c[n++]=$NF }
  /^yna_commit_batch_events_sum/ { sum=$NF } /^yna_commit_batch_events_count/ { cnt=$NF }
  /^yna_log_sync_seconds_sum/ { ssum=$NF } /^yna_log_sync_seconds_count/ { scnt=$NF }
  END {
    half = cnt / 2; med = "?"
    for (i = 0; i < n; i++) if (c[i] >= half) { med = (i == 0 ? "1" : "(" b[i-1] "," b[i] "]"); break }
    printf "requests/s %s (non-2xx %s)\nlog writes %d, events %d\nevents per write: mean %.1f, median in %s\nsync per write: mean %.2f ms\n", rps, non2xx, cnt, sum, (cnt ? sum/cnt : 0), med, (scnt ? 1000*ssum/scnt : 0)
  }' <<<"$M"
