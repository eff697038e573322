#!/usr/bin/env bash
# Engine binaries side by side under the same open loop (full call flows, PoP per request,
# notification sockets, no webhook), alternating, ROUNDS times: engine CPU µs per request
# and /start p99 for each. Used for what push cost every request (BENCHMARKS.md).
#
#   tools/bench/ab-open-loop.sh [--rounds N] [--seconds S] [--rate CALLS_PER_S] [--loadgen BIN] ENGINE...
# Check `uptime` first (printed); run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=2 SECS=20 RATE=150 LOADGEN=build-rel/tools/yna-loadgen
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --loadgen) LOADGEN=$2; shift 2 ;;
    -*) sed -n '2,7p' "$0"; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,7p' "$0"; exit 2; }
command -v jq >/dev/null || { echo "needs jq"; exit 2; }
uptime
for r in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    d=$(mktemp -d /tmp/ab-open.XXXX)
    "$bin" --listen 127.0.0.1:0 --data-dir "$d/data" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 \
      --max-sockets-per-sub 0 --max-calls-per-number 0 --max-ringing-per-number 0 >"$d/out" 2>"$d/err" &
    pid=$!
    for _ in $(seq 200); do grep -q listening "$d/out" 2>/dev/null && break; sleep 0.05; done
    port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$d/out" | grep -o '[0-9]*$')
    j=$("$LOADGEN" --port "$port" --data-dir "$d/data" --engine-pid "$pid" --json -q --threads 2 --mix full \
          -r "$RATE" -c 256 -d "$SECS" --warmup 2)
    echo "round $r $bin $(echo "$j" | jq -c '{rps: .requests_per_s, start_p99: .endpoints.start.p99_ms, cpu_us: .engine.cpu_per_request_us}')"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$d"
  done
done
uptime
