#!/usr/bin/env bash
# Archive under load (issue 15, contract §9): while yna-loadgen drives the real engine,
# archive the older half of the log, check archive and log as one chain, show that one
# changed byte is named, and that the call detail records over archive + log equal those
# taken before archiving.
#
#   tools/bench/archive-under-load.sh                  # 200,000 calls
#   CALLS=20000 tools/bench/archive-under-load.sh      # a quick run
#
# Steps, each timed and printed:
#   1. yna-engine (port 0, fresh data folder under OUT, --call-retention RETENTION), then
#      yna-loadgen -n CALLS in the background (mixed endings);
#   2. once HALF_AT of the calls are done: `yna-tool --json cdr` (the records before) and
#      the log's last seq N;
#   3. `yna-tool archive --before-seq N/2 --out OUT/older.yna-archive`: written, synced,
#      read back, then removed from the live log by the running engine (admin socket);
#   4. `yna-tool --archive FILE verify`: archive and live log as one chain;
#   5. a copy of the archive with one byte changed: verify must fail naming its block;
#   6. after the load: `yna-tool --archive FILE --json cdr`: every record of step 2 must be
#      in it unchanged; loadgen must report no error.
# Prints the archive's size, its bytes per event, the live log's size before and after.
# Exit 0 only when every check held.
#
# Settings (environment): BUILD (build), CALLS (200000), USERS (32), HALF_AT (0.5),
# RETENTION (2), MIX (answer:4,full:1,cancel:2,decline:1,busy:1), OUT (fresh
# /tmp/yna-archive.XXXXXX), KEEP_DATA (0).
set -euo pipefail
cd "$(dirname "$0")/../.."
case ${1:-} in -h|--help) sed -n '2,29p' "$0"; exit 0 ;; ?*) echo "no arguments; settings are environment variables (--help)" >&2; exit 2 ;; esac
BUILD=${BUILD:-build}
CALLS=${CALLS:-200000}
USERS=${USERS:-32}
HALF_AT=${HALF_AT:-0.5}
RETENTION=${RETENTION:-2}
MIX=${MIX:-answer:4,full:1,cancel:2,decline:1,busy:1}
KEEP_DATA=${KEEP_DATA:-0}
OUT=${OUT:-$(mktemp -d /tmp/yna-archive.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ENGINE=$BUILD/transport/yna-engine LOADGEN=$BUILD/tools/yna-loadgen TOOL=$BUILD/tools/yna-tool
for b in "$ENGINE" "$LOADGEN" "$TOOL"; do
  [ -x "$b" ] || { echo "$b missing: ninja -C $BUILD" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "needs jq (apt-get install jq)" >&2; exit 2; }

DATA=$OUT/data
EPID='' LPID=''
cleanup() {
  for p in $LPID $EPID; do kill "$p" 2>/dev/null || true; done
  for p in $LPID $EPID; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP_DATA" = 1 ]; then echo "data folder kept: $DATA" >&2; else rm -rf "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FAILED=0
check() {  # check DESCRIPTION COMMAND...: runs it, prints PASS/FAIL
  if "${@:2}"; then echo "PASS  $1"; else echo "FAIL  $1"; FAILED=1; fi
}
t() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(t)" 'BEGIN { printf "%.2f", b - a }'; }
tool() { "$TOOL" --data-dir "$DATA" "$@"; }

uptime
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $CALLS calls, $USERS users, --call-retention $RETENTION"
rm -rf "$DATA"; mkdir -p "$DATA"
"$ENGINE" --listen 127.0.0.1:0 --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 \
  --max-connections 30000 --max-calls-per-number 0 --max-ringing-per-number 0 --call-retention "$RETENTION" \
  >"$OUT/engine.out" 2>"$OUT/engine.err" &
EPID=$!
for _ in $(seq 600); do
  grep -q listening "$OUT/engine.out" 2>/dev/null && break
  kill -0 "$EPID" 2>/dev/null || { echo "the engine exited:" >&2; cat "$OUT/engine.err" >&2; exit 1; }
  sleep 0.05
done
EPORT=$(grep -o '[0-9]*$' "$OUT/engine.out")
"$LOADGEN" --port "$EPORT" --data-dir "$DATA" --engine-pid "$EPID" --json -c "$USERS" -n "$CALLS" --mix "$MIX" \
  --token-ttl 86400 >"$OUT/loadgen.json" 2>"$OUT/loadgen.log" &
LPID=$!
calls_done() { tail -c 2000 "$OUT/loadgen.log" 2>/dev/null | grep -o ', calls [0-9]*' | tail -1 | grep -o '[0-9]*$' || echo 0; }
target=$(awk -v n="$CALLS" -v f="$HALF_AT" 'BEGIN { printf "%d", n * f }')
while [ "$(calls_done)" -lt "$target" ]; do
  kill -0 "$LPID" 2>/dev/null || { echo "loadgen ended early:" >&2; tail -5 "$OUT/loadgen.log" >&2; exit 1; }
  sleep 1
done
echo "load at $(calls_done) calls"

T=$(t); tool --json cdr >"$OUT/cdr-before.jsonl"; echo "cdr before: $(wc -l <"$OUT/cdr-before.jsonl") records in $(since "$T") s"
LAST=$(tool --json verify --no-state | jq .lastSeq)
LIVE_BEFORE=$(du -sb "$DATA/log" | cut -f1)
CUT=$((LAST / 2 + 1))
T=$(t)
check "archive --before-seq $CUT while the load runs (removed by the engine)" \
  bash -c "'$TOOL' --data-dir '$DATA' --json archive --before-seq $CUT --out '$OUT/older.yna-archive' >'$OUT/archive.json' && jq -e '.ok and .removedBy == \"engine\"' '$OUT/archive.json' >/dev/null"
ARCHIVE_S=$(since "$T")
cat "$OUT/archive.json"
ANCHOR=$(jq '.anchor.seq' "$OUT/archive.json")
SIZE=$(stat -c %s "$OUT/older.yna-archive")
echo "archive: events 1..$ANCHOR, $SIZE bytes ($(awk -v s="$SIZE" -v n="$ANCHOR" 'BEGIN { printf "%.1f", s / n }') bytes per event), written and removed in $ARCHIVE_S s"

T=$(t)
check "verify --archive: archive and live log are one chain" tool --archive "$OUT/older.yna-archive" verify
echo "verify --archive took $(since "$T") s"
cp "$OUT/older.yna-archive" "$OUT/changed.yna-archive"
python3 - "$OUT/changed.yna-archive" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x20
open(p, 'wb').write(b)
EOF
tool --archive "$OUT/changed.yna-archive" verify >"$OUT/verify-changed.txt" 2>&1 && rc=0 || rc=$?
echo "one byte changed: $(head -1 "$OUT/verify-changed.txt")"
check "verify names the changed block" bash -c "[ $rc -eq 1 ] && grep -q 'block' '$OUT/verify-changed.txt'"

wait "$LPID" && LRC=0 || LRC=$?
LPID=''
check "loadgen finished without errors" bash -c "[ $LRC -eq 0 ] && jq -e '.passed' '$OUT/loadgen.json' >/dev/null"
sleep "$RETENTION"
T=$(t); tool --archive "$OUT/older.yna-archive" --json cdr >"$OUT/cdr-after.jsonl"; echo "cdr over archive + log: $(wc -l <"$OUT/cdr-after.jsonl") records in $(since "$T") s"
missing=$(sort "$OUT/cdr-before.jsonl" | comm -23 - <(sort "$OUT/cdr-after.jsonl") | wc -l)
check "cdr over archive + log holds every record of before, unchanged ($missing missing)" [ "$missing" -eq 0 ]
check "verify of the live log alone" tool verify
echo "live log: $LIVE_BEFORE bytes before archiving, $(du -sb "$DATA/log" | cut -f1) after the run"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$FAILED" -eq 0 ] && echo "all checks passed" || { echo "some checks failed"; exit 1; }
