#!/usr/bin/env bash
# Where the engine's CPU goes under load: runs yna-engine (fsync on) under `perf record`
# while yna-loadgen drives it, then prints the flat profile (self time per function, % of
# the engine's samples) and the same grouped by library.
#
#   tools/bench/profile.sh [BUILD_DIR] [start|full] [SECONDS] [perf record options…]
#     start  POST /start only, Bearer, no PoP, 64 users (the /start benchmark)
#     full   full call flows, a PoP token signed per request, 32 users
#
# BUILD_DIR defaults to build (debugoptimized: symbols, -O2). The raw profile stays in
# $OUT (default /tmp/yna-profile-<mode>.data) for `perf report -i`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}; MODE=${2:-start}; SECS=${3:-10}; shift $(( $# > 3 ? 3 : $# ))
OUT=${OUT:-/tmp/yna-profile-$MODE.data}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)"; exit 2; }
DATA=$(mktemp -d)
trap 'kill $EPID 2>/dev/null; wait $EPID 2>/dev/null; rm -rf "$DATA"' EXIT
"$BUILD/transport/yna-engine" --listen 127.0.0.1:0 --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-calls-per-number 0 --max-ringing-per-number 0 >"$DATA/out" 2>"$DATA/err" &
EPID=$!
for _ in $(seq 100); do grep -q listening "$DATA/out" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep -o '[0-9]*$' "$DATA/out")
case $MODE in
  start) ARGS=(--mix start --pop off -c 64) ;;
  full) ARGS=(--mix full -c 32) ;;
  *) echo "mode: start or full"; exit 2 ;;
esac
"$BUILD/tools/yna-loadgen" --port "$PORT" --data-dir "$DATA" --engine-pid "$EPID" -q -d $((SECS + 2)) "${ARGS[@]}" >"$DATA/report" &
LG=$!
sleep 1
perf record -F 1999 -g -o "$OUT" -p "$EPID" "$@" -- sleep "$SECS" 2>/dev/null
wait $LG || true
cat "$DATA/report"
tidy() { grep -E '^ +[0-9]' | sed -E 's/ +$//; s/ +- +- *$//; s/ +$//' | cut -c1-200; }
echo
echo "== engine, self time per function (perf report --no-children --sort symbol -i $OUT)"
perf report -i "$OUT" --stdio --no-children -g none --sort symbol 2>/dev/null | tidy | head -40 || true
echo
echo "== engine, by library"
perf report -i "$OUT" --stdio --no-children -g none --sort dso 2>/dev/null | tidy | head -15 || true
echo
echo "== engine, by thread (pid:tid)"
perf report -i "$OUT" --stdio --no-children -g none --sort pid 2>/dev/null | tidy | head -10 || true  # the main thread is an I/O thread; threads are unnamed
