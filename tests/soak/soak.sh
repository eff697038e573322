#!/usr/bin/env bash
# Soak test (not in CI): yna-engine under steady load for a long time, watching its
# memory. Starts BUILD/transport/yna-engine on a free port with a temporary data folder
# and --rate-limit 0, measures its capacity with a short closed-loop yna-loadgen run
# (mix full:6,answer:2,cancel:1,busy:1), then runs yna-loadgen open-loop at half that
# call rate for MINUTES minutes. Every 10 s it samples the engine's resident memory
# (VmRSS, /proc/PID/status) and prints a progress line; at the end a table of the
# samples, one summary line
#   soak: RSS start X MiB, end Y MiB, max Z MiB over N minutes, E errors
# and `yna-tool verify` of the log.
#
#   tests/soak/soak.sh [BUILD] [MINUTES]          e.g. tests/soak/soak.sh build 10 (the default)
# Environment: SOAK_USERS (64, virtual users of the open-loop run), SOAK_CAPACITY_SECONDS
# (15, length of the capacity measurement), SOAK_RATE (calls/s: skips the measurement).
# Exit status: 0 only when the loadgen reported no error (and passed) and verify passed.
set -uo pipefail
BUILD=$(realpath "${1:-build}")
MINUTES=${2:-10}
cd "$(dirname "$0")/../.."
ENGINE=$BUILD/transport/yna-engine
TOOL=$BUILD/tools/yna-tool
LOADGEN=$BUILD/tools/yna-loadgen
MIX=full:6,answer:2,cancel:1,busy:1
USERS=${SOAK_USERS:-64}
CAPACITY_SECONDS=${SOAK_CAPACITY_SECONDS:-15}
SAMPLE_SECONDS=10
for b in "$ENGINE" "$TOOL" "$LOADGEN"; do
  [ -x "$b" ] || { echo "soak: $b is missing (build first: ninja -C $BUILD)"; exit 2; }
done
WORK=$(mktemp -d /tmp/yna-soak.XXXXXX)
DATA=$WORK/data
ENGINE_PID=""
LOADGEN_PID=""
cleanup() {
  [ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null
  [ -n "$ENGINE_PID" ] && kill "$ENGINE_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ENGINE" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 >"$WORK/engine.out" 2>"$WORK/engine.err" &
ENGINE_PID=$!
for _ in $(seq 1 400); do
  grep -q 'listening on' "$WORK/engine.out" 2>/dev/null && break
  sleep 0.05
done
grep -q 'listening on' "$WORK/engine.out" || { echo "soak: the engine did not start"; tail -5 "$WORK/engine.err"; exit 1; }
echo "soak: engine pid $ENGINE_PID on 127.0.0.1:$PORT, data $DATA"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$ENGINE_PID/status" 2>/dev/null; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
json_field() {  # json_field FILE PYTHON-EXPRESSION-ON-r
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# 1. Capacity: closed loop, as many calls as the engine completes.
if [ -n "${SOAK_RATE:-}" ]; then
  RATE=$SOAK_RATE
  echo "soak: open-loop rate $RATE calls/s (SOAK_RATE; capacity not measured)"
else
  echo "soak: measuring capacity: closed loop, 16 users, mix $MIX, ${CAPACITY_SECONDS} s after 3 s warm-up"
  "$LOADGEN" --port "$PORT" --data-dir "$DATA" -c 16 --mix "$MIX" --warmup 3 --duration "$CAPACITY_SECONDS" \
    --json --quiet >"$WORK/capacity.json" 2>"$WORK/capacity.err"
  cap_rc=$?
  if [ ! -s "$WORK/capacity.json" ]; then
    echo "soak: the capacity run failed (exit $cap_rc)"; tail -5 "$WORK/capacity.err"; exit 1
  fi
  CAP_CALLS=$(json_field "$WORK/capacity.json" 'r["calls_per_s"]')
  CAP_REQS=$(json_field "$WORK/capacity.json" 'r["requests_per_s"]')
  CAP_ERRORS=$(json_field "$WORK/capacity.json" 'sum(e["count"] for e in r["errors"])')
  RATE=$(awk -v c="$CAP_CALLS" 'BEGIN { r = c / 2; if (r < 1) r = 1; printf "%.1f", r }')
  echo "soak: capacity $CAP_CALLS calls/s ($CAP_REQS requests/s, $CAP_ERRORS errors, exit $cap_rc); soaking at $RATE calls/s"
fi

# 2. The soak: open loop at RATE for MINUTES, RSS sampled every SAMPLE_SECONDS.
DURATION=$(awk -v m="$MINUTES" 'BEGIN { printf "%g", m * 60 }')
"$LOADGEN" --port "$PORT" --data-dir "$DATA" -c "$USERS" -r "$RATE" --mix "$MIX" --duration "$DURATION" \
  --engine-pid "$ENGINE_PID" --json >"$WORK/soak.json" 2>"$WORK/soak.progress" &
LOADGEN_PID=$!
T0=${EPOCHREALTIME/[.,]/}  # µs
elapsed() { echo $(( (${EPOCHREALTIME/[.,]/} - T0) / 1000000 )); }
samples=()  # "seconds rss_kib requests"
sample() {
  local rss req
  rss=$(rss_kib)
  [ -n "$rss" ] || return 1
  # The loadgen's latest progress line: "[  12.0 s] requests N (R/s), calls C, in flight F, errors E"
  req=$(grep -o 'requests [0-9]*' "$WORK/soak.progress" 2>/dev/null | tail -1 | awk '{ print $2 }')
  local t
  t=$(elapsed)
  samples+=("$t $rss ${req:--}")
  local errs
  errs=$(grep -o 'errors [0-9]*' "$WORK/soak.progress" 2>/dev/null | tail -1 | awk '{ print $2 }')
  printf 'soak: %5d s  RSS %8s MiB  requests %8s  errors %s\n' "$t" "$(mib "$rss")" "${req:--}" "${errs:--}"
}
sample
engine_died=0
next=0
while kill -0 "$LOADGEN_PID" 2>/dev/null; do
  next=$((next + SAMPLE_SECONDS))  # on the 10 s marks, whatever a sample took
  while [ "$(elapsed)" -lt "$next" ] && kill -0 "$LOADGEN_PID" 2>/dev/null; do sleep 0.1; done
  kill -0 "$ENGINE_PID" 2>/dev/null || { engine_died=1; echo "soak: the engine died"; tail -5 "$WORK/engine.err"; break; }
  kill -0 "$LOADGEN_PID" 2>/dev/null && sample
done
wait "$LOADGEN_PID"
loadgen_rc=$?
LOADGEN_PID=""
[ "$engine_died" = 0 ] && sample  # the end: after the last calls finished

# 3. Report.
echo
printf '%8s  %10s  %12s\n' "time s" "RSS MiB" "requests"
for s in "${samples[@]}"; do
  set -- $s
  printf '%8s  %10s  %12s\n' "$1" "$(mib "$2")" "$3"
done
if [ -s "$WORK/soak.json" ]; then
  ERRORS=$(json_field "$WORK/soak.json" 'sum(e["count"] for e in r["errors"])')
  PASSED=$(json_field "$WORK/soak.json" 'r["passed"]')
  json_field "$WORK/soak.json" '"soak: loadgen: %d requests, %.1f requests/s, %d calls completed, %d failed, notifications %d missing, %d unexpected, %d calls skipped (no free user), errors %s" % (r["requests"], r["requests_per_s"], r["calls_completed"], r["calls_failed"], r["notifications"]["missing"], r["notifications"]["unexpected"], r["open_loop"]["skipped"], r["errors"])'
else
  ERRORS=1; PASSED=False
  echo "soak: the loadgen printed no report (exit $loadgen_rc)"; tail -5 "$WORK/soak.progress"
fi
read -r START_KIB MAX_KIB END_KIB < <(printf '%s\n' "${samples[@]}" | awk 'NR == 1 { s = $2 } { if ($2 > m) m = $2; e = $2 } END { print s, m, e }')
echo "soak: RSS start $(mib "$START_KIB") MiB, end $(mib "$END_KIB") MiB, max $(mib "$MAX_KIB") MiB over $MINUTES minutes, $ERRORS errors"

kill "$ENGINE_PID" 2>/dev/null; wait "$ENGINE_PID" 2>/dev/null
ENGINE_PID=""
"$TOOL" --data-dir "$DATA" verify >"$WORK/verify.txt" 2>&1
verify_rc=$?
echo "soak: verify (exit $verify_rc): $(tail -1 "$WORK/verify.txt")"

rc=0
[ "$engine_died" = 0 ] || rc=1
[ "$loadgen_rc" = 0 ] && [ "$PASSED" = True ] && [ "$ERRORS" = 0 ] || { echo "soak: FAIL: the loadgen reported errors (exit $loadgen_rc)"; rc=1; }
[ "$verify_rc" = 0 ] || { echo "soak: FAIL: verify failed"; tail -5 "$WORK/verify.txt"; rc=1; }
[ "$rc" = 0 ] && echo "soak: PASS"
exit "$rc"
