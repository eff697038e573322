#!/usr/bin/env bash
# Before/after of an engine change (style: "measured before and after, in the same hour,
# with the same command"): two yna-engine binaries, alternating, ROUNDS rounds of
#   /start saturation  yna-loadgen --mix start --pop off -c 64 -d SECS --warmup 2
#   full call flows    yna-loadgen --mix full -c 32 -d SECS --warmup 2
# each engine on a fresh data folder with no per-client limits, the same yna-loadgen
# (LOADGEN, default build/tools/yna-loadgen) for both. One JSON line per run: requests/s,
# /start p50 and p99 (ms), engine CPU µs per request, whether every check passed.
#   tools/bench/ab-engines.sh OLD_ENGINE NEW_ENGINE [ROUNDS] [SECS]
# Take medians over rounds; check `uptime` first (printed at start and end).
set -uo pipefail
OLD=$1; NEW=$2; ROUNDS=${3:-3}; SECS=${4:-10}
LOADGEN=${LOADGEN:-build/tools/yna-loadgen}
FLAGS="--rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-connections 30000 --max-calls-per-number 0 --max-ringing-per-number 0"
run() {  # $1 binary $2 label $3.. loadgen args
  local bin=$1 label=$2; shift 2
  local d; d=$(mktemp -d /tmp/ab.XXXX)
  $bin --listen 127.0.0.1:0 --data-dir $d $FLAGS > $d/out 2> $d/err &
  local pid=$!
  until grep -q listening $d/out 2>/dev/null; do sleep 0.05; done
  local port; port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' $d/out | grep -o '[0-9]*$')
  sleep 1
  local j; j=$($LOADGEN --port $port --data-dir $d --engine-pid $pid --json -q --threads 2 "$@")
  echo "$label $(jq -c '{rps: .requests_per_s, p50: .endpoints.start.p50_ms, p99: .endpoints.start.p99_ms, cpu_us: .engine.cpu_per_request_us, passed: .passed}' <<<"$j")"
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
}
uptime
for r in $(seq $ROUNDS); do
  for v in old new; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    run $bin "start-$v" --mix start --pop off -c 64 -d $SECS --warmup 2
  done
  for v in new old; do
    bin=$OLD; [ $v = new ] && bin=$NEW
    run $bin "full-$v" --mix full -c 32 -d $SECS --warmup 2
  done
done
uptime
