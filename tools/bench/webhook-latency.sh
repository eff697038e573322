#!/usr/bin/env bash
# Webhooks under load (issue 20, contract §13): how long a notification takes from its
# event to a receiver on the same machine, and whether webhooks (delivered, or failing
# because the receiver is down) change what requests see. Runs, alternating, ROUNDS times:
#   none  yna-engine without --webhook
#   up    --webhook to tests/integration/webhook_receiver.mjs (node, checks every signature)
#   down  --webhook to a port where nothing listens (every attempt fails and is retried)
# each on a fresh data folder (fsync on, no per-client limits) under
#   yna-loadgen --mix full -r RATE -c 256 -d SECS --warmup 2   (open loop, PoP per request)
# Prints per run: requests/s, /start p50/p99, the worst endpoint's p99, the WebSocket
# notification p99, engine CPU µs per request,
# and for `up` the deliveries received (valid signatures) and their latency p50/p99/max in
# ms, from the event's time (epochTime: when it was decided, before its sync) to the
# receiver's clock on arrival; for `down` the retries counted.
#
#   tools/bench/webhook-latency.sh [--build DIR] [--rounds N] [--seconds S] [--rate CALLS_PER_S]
# Check `uptime` first (printed); run nothing else meanwhile.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=build ROUNDS=2 SECS=20 RATE=150
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) sed -n '2,17p' "$0"; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "needs jq"; exit 2; }
command -v node >/dev/null || { echo "needs node"; exit 2; }
ENGINE=$BUILD/transport/yna-engine LOADGEN=$BUILD/tools/yna-loadgen
RECEIVER=tests/integration/webhook_receiver.mjs
FLAGS=(--rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-sockets-per-sub 0
       --max-calls-per-number 0 --max-ringing-per-number 0)

metric() {  # $1 port, $2 metric name: the sum of its series
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 ~ "^"m"(\\{|$)" {s += $2} END {print s + 0}'
}

run() {  # $1 label: none, up or down
  local label=$1 d pid port rpid rport extra=() j retries=0
  d=$(mktemp -d /tmp/webhook-bench.XXXX)
  echo "bench-secret" >"$d/secret"
  if [ "$label" = up ]; then
    node "$RECEIVER" "$d/secret" "$d/received.jsonl" 0 >"$d/receiver.out" 2>&1 &
    rpid=$!
    for _ in $(seq 200); do grep -q "listening on" "$d/receiver.out" 2>/dev/null && break; sleep 0.05; done
    rport=$(grep -o 'listening on [0-9]*' "$d/receiver.out" | grep -o '[0-9]*$')
  elif [ "$label" = down ]; then
    rport=9  # discard: nothing listens on loopback
  fi
  if [ "$label" != none ]; then
    extra=(--webhook "http://127.0.0.1:$rport/hook" --webhook-secret-file "$d/secret" --outbound-allow 127.0.0.1)
  fi
  "$ENGINE" --listen 127.0.0.1:0 --data-dir "$d/data" "${FLAGS[@]}" "${extra[@]}" >"$d/out" 2>"$d/err" &
  pid=$!
  for _ in $(seq 200); do grep -q listening "$d/out" 2>/dev/null && break; sleep 0.05; done
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$d/out" | grep -o '[0-9]*$')
  j=$("$LOADGEN" --port "$port" --data-dir "$d/data" --engine-pid "$pid" --json -q --threads 2 \
        --mix full -r "$RATE" -c 256 -d "$SECS" --warmup 2)
  [ "$label" = down ] && retries=$(metric "$port" yna_dispatch_retries_total)
  if [ "$label" = up ]; then
    # Let the last deliveries arrive (the lag falls to 0), at most 10 s.
    for _ in $(seq 100); do [ "$(metric "$port" yna_dispatch_lag_events)" = 0 ] && break; sleep 0.1; done
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "${rpid:-}" ] && { kill "$rpid"; wait "$rpid" 2>/dev/null || true; }
  touch "$d/received.jsonl"
  jq -n -c --arg name "$label" --argjson lg "$j" --argjson retries "$retries" --slurpfile got "$d/received.jsonl" '
    def pct(p): if length == 0 then null else sort | .[((length - 1) * p | floor)] end;
    ($got | map(select(.valid) | .receivedAt - ((.body.notification | to_entries[0].value.notificationReference.epochTime))))
      as $lat |
    {run: $name, requests_per_s: $lg.requests_per_s,
     start_p50_ms: $lg.endpoints.start.p50_ms, start_p99_ms: $lg.endpoints.start.p99_ms,
     worst_endpoint_p99_ms: ([$lg.endpoints[] | .p99_ms] | max), ws_notify_p99_ms: $lg.notifications.latency.p99_ms,
     engine_cpu_us: $lg.engine.cpu_per_request_us, passed: $lg.passed}
    + (if $name == "up" then {delivered: ($lat | length), invalid: ($got | map(select(.valid | not)) | length),
                              latency_ms: {p50: ($lat | pct(0.5)), p99: ($lat | pct(0.99)), max: ($lat | max)}}
       elif $name == "down" then {retries: $retries} else {} end)'
  rm -rf "$d"
}

uptime
for r in $(seq "$ROUNDS"); do
  run none
  run up
  run down
done
uptime
