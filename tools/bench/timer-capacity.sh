#!/usr/bin/env bash
# Capacity with timers on (issue 19): do call timers and requests share the reactor
# without starving each other? Every call of a start-only load ends by its invitation
# timer, so at saturation the engine writes one expiry per /start besides the /start
# itself. Runs, alternating, ROUNDS times:
#   off  yna-engine --invite-timeout 0   (no timer: the /start capacity alone)
#   on   yna-engine --invite-timeout T   (every call ends NotReachable T s after /start)
# each under `yna-loadgen --mix start --pop off -c C -d SECS --warmup 2` on a fresh data
# folder (fsync on, no per-client limits), then waits T + 2 s so the last calls expire,
# stops the engine and reads its log with `yna-tool cdr --json`. Prints per run:
#   starts/s and /start p99 (loadgen), engine CPU µs per /start,
#   expiries written per second during the run (yna_timer_expiries_total{timer="invite"}),
#   calls ended by the timer / calls made, and the timer lateness (end − start − T) p50,
#   p99, max in ms: how late an expiry was written after its deadline.
#
#   tools/bench/timer-capacity.sh [--build DIR] [--rounds N] [--seconds S] [--conns C] [--invite-timeout T]
# Check `uptime` first (printed); run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=build ROUNDS=3 SECS=15 CONNS=64 T=2
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --invite-timeout) T=$2; shift 2 ;;
    *) sed -n '2,18p' "$0"; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "needs jq"; exit 2; }
ENGINE=$BUILD/transport/yna-engine LOADGEN=$BUILD/tools/yna-loadgen TOOL=$BUILD/tools/yna-tool
FLAGS=(--rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-connections 30000
       --max-calls-per-number 0 --max-ringing-per-number 0)

expiries() {  # $1 port: yna_timer_expiries_total{timer="invite"}
  curl -s "http://127.0.0.1:$1/metrics" | awk '/^yna_timer_expiries_total\{timer="invite"\}/ {print $2}'
}

run() {  # $1 label, $2 invite timeout (s)
  local label=$1 timeout=$2 d pid port before after j
  d=$(mktemp -d /tmp/timer-cap.XXXX)
  "$ENGINE" --listen 127.0.0.1:0 --data-dir "$d" "${FLAGS[@]}" --invite-timeout "$timeout" >"$d/out" 2>"$d/err" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$d/out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$d/out" | grep -o '[0-9]*$')
  sleep 1
  # The loadgen's 2 s of warm-up are not measured; the expiry count is taken over the
  # whole run (warm-up included) and divided by its whole length.
  before=$(expiries "$port"); local t0; t0=$(date +%s.%N)
  j=$("$LOADGEN" --port "$port" --data-dir "$d" --engine-pid "$pid" --json -q --threads 2 \
        --mix start --pop off -c "$CONNS" -d "$SECS" --warmup 2)
  after=$(expiries "$port"); local t1; t1=$(date +%s.%N)
  sleep "$(awk -v t="$timeout" 'BEGIN { print t + 2 }')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  "$TOOL" --data-dir "$d" cdr --json >"$d/cdr.jsonl"
  local ms; ms=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')
  jq -n -c --arg name "$label" --argjson lg "$j" --argjson ms "$ms" \
     --argjson exp "$(awk -v a="${after:-0}" -v b="${before:-0}" -v t0="$t0" -v t1="$t1" 'BEGIN { print (a - b) / (t1 - t0) }')" \
     --slurpfile cdr "$d/cdr.jsonl" '
    def pct(p): if length == 0 then null else sort | .[((length - 1) * p | floor)] end;
    ($cdr | map(select(.finalStatus == "NotReachable" and .end != null) | (.end - .start - $ms))) as $late |
    {run: $name,
     starts_per_s: $lg.requests_per_s, start_p99_ms: $lg.endpoints.start.p99_ms,
     engine_cpu_us: $lg.engine.cpu_per_request_us, passed: $lg.passed,
     expiries_per_s: ($exp * 10 | round / 10),
     cdr_rows: ($cdr | length), ended_by_timer: ($late | length),
     lateness_ms: {p50: ($late | pct(0.5)), p99: ($late | pct(0.99)), max: ($late | max)}}'
  rm -rf "$d"
}

uptime
for r in $(seq "$ROUNDS"); do
  run off 0
  run on "$T"
done
uptime
