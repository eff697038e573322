#!/usr/bin/env bash
# Crash test (issue 8): yna-loadgen drives full call flows against yna-engine, which is
# SIGKILLed at a random moment, then restarted on the same data folder; KILLS times.
# After every restart `yna-tool verify` must pass; at the end every transition a client
# saw acknowledged (HTTP 200 in the loadgen's --record) must be in the log as an
# accepted event with its x-transaction-id, and no (from, clientCorrelator) may have
# started two calls (clients retry /start with the same clientCorrelator).
#
#   tests/crash/crash-test.sh [BUILD] [KILLS]        e.g. tests/crash/crash-test.sh build 20
# Prints "crash: N kills survived, A acknowledged transitions checked, L lost, D duplicated"
# and exits 0 only when L = D = 0 and every verify passed.
set -uo pipefail
BUILD=$(realpath "${1:-build}")
cd "$(dirname "$0")/../.."
KILLS=${2:-20}
ENGINE=$BUILD/transport/yna-engine
TOOL=$BUILD/tools/yna-tool
LOADGEN=$BUILD/tools/yna-loadgen
WORK=$(mktemp -d /tmp/yna-crash.XXXXXX)
DATA=$WORK/data
trap 'kill -9 $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# One port for every run, so that the loadgen's retries of /start (same clientCorrelator)
# reach the restarted engine.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_engine() {
  : >"$WORK/engine.out"
  "$ENGINE" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --rate-limit 0 >"$WORK/engine.out" 2>>"$WORK/engine.err" &
  ENGINE_PID=$!
  for _ in $(seq 1 400); do
    grep -q 'listening on' "$WORK/engine.out" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "crash: the engine did not start"; tail -5 "$WORK/engine.err"; exit 1
}

verify_failures=0
start_engine
for i in $(seq 1 "$KILLS"); do
  "$LOADGEN" --port "$PORT" --data-dir "$DATA" -c 8 --duration 30 --mix full:6,answer:2,cancel:1,busy:1 \
    --retry-start --retry-for 2 --record "$WORK/record-$i.jsonl" --quiet --timeout 2 >/dev/null 2>&1 &
  LOADGEN_PID=$!
  # Kill at a random moment once calls are flowing (the first 200 is recorded).
  for _ in $(seq 1 400); do
    grep -q '"status":200' "$WORK/record-$i.jsonl" 2>/dev/null && break
    sleep 0.05
  done
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.5 }')"
  kill -9 "$ENGINE_PID"; wait "$ENGINE_PID" 2>/dev/null
  start_engine  # at once, on the same folder and port: the loadgen's retries land here
  sleep 1
  kill "$LOADGEN_PID" 2>/dev/null; wait "$LOADGEN_PID" 2>/dev/null
  if ! "$TOOL" --data-dir "$DATA" verify >"$WORK/verify.txt" 2>&1; then
    verify_failures=$((verify_failures + 1)); echo "crash: verify failed after kill $i:"; tail -3 "$WORK/verify.txt"
  fi
  printf 'crash: kill %d/%d, %s acknowledged so far\n' "$i" "$KILLS" "$(cat "$WORK"/record-*.jsonl 2>/dev/null | grep -c '"status":200')"
done
kill "$ENGINE_PID"; wait "$ENGINE_PID" 2>/dev/null
"$TOOL" --data-dir "$DATA" export >"$WORK/log.jsonl" || { echo "crash: export failed"; exit 1; }

python3 - "$WORK" "$KILLS" "$verify_failures" <<'PY'
import glob, json, sys
work, kills, verify_failures = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
accepted_txn = set()
starts = {}  # (from, clientCorrelator) -> call ids created
for line in open(f"{work}/log.jsonl"):
    e = json.loads(line)
    out = e.get("outcome", {})
    if out.get("accepted"):
        accepted_txn.add(e.get("txn"))
        p = e.get("payload", {})
        if e.get("type") == "start" and not out.get("noop") and p.get("clientCorrelator"):
            starts.setdefault((p.get("from"), p["clientCorrelator"]), set()).add(e.get("callId"))
acked = lost = 0
for path in glob.glob(f"{work}/record-*.jsonl"):
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue  # the loadgen was killed mid-line
        if r.get("status") != 200:
            continue
        acked += 1
        if r.get("txn") not in accepted_txn:
            lost += 1
            if lost <= 5:
                print("crash: acknowledged but not in the log:", line.strip())
dup = sum(1 for ids in starts.values() if len(ids) > 1)
retried = 0
for path in glob.glob(f"{work}/record-*.jsonl"):
    seen = {}
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("endpoint") == "start" and r.get("clientCorrelator"):
            seen[r["clientCorrelator"]] = seen.get(r["clientCorrelator"], 0) + 1
    retried += sum(1 for n in seen.values() if n > 1)
print(f"crash: {retried} /start requests answered more than once (retries after a kill)")
print(f"crash: {kills} kills survived, {acked} acknowledged transitions checked, {lost} lost, {dup} duplicated"
      f"{'' if verify_failures == 0 else f', {verify_failures} verify failures'}")
sys.exit(0 if lost == 0 and dup == 0 and verify_failures == 0 and acked > 0 else 1)
PY
