#!/usr/bin/env bash
# Bytes per event on disk, with and without compression (issue 15): writes the same log of
# CALLS calls (5 events each: start, ringing, connected, end, retire; the start and the
# answer carry a ~300-byte SDP) twice with
# yna-log-gen, once with the engine's compression (LZ4; ZSTD in the bottommost level) and
# once with none, flushes and compacts every column family with RocksDB's ldb (it opens
# the log with the options stored in it), and divides each column family's SST bytes by
# the events. Also the record itself: the bytes of `yna-tool export`, one JSON line per
# event, which is what a record holds.
#
#   tools/bench/bytes-per-event.sh [BUILD] [CALLS]      # build 50000
set -euo pipefail
BUILD=${1:-build}
CALLS=${2:-50000}
W=$(mktemp -d /tmp/yna-bpe.XXXXXX)
trap 'rm -rf "$W"' EXIT
EVENTS=$((CALLS * 5))
# calls: the persisted state of the calls in memory (none left at the end: every call
# retired), by_start: the /start keys (contract §9).
CFS=(events by_call by_msisdn by_txn by_start calls)
printf '%-13s' ""
for cf in "${CFS[@]}"; do printf ' %10s' "$cf"; done
printf ' %10s  (bytes per event, %d events)\n' total "$EVENTS"
for mode in none engine; do
  flag=(); [ "$mode" = none ] && flag=(--no-compression)
  echo "writing $CALLS calls with yna-log-gen ($mode)..." >&2
  "$BUILD/tools/yna-log-gen" --data-dir "$W/$mode" --calls "$CALLS" "${flag[@]}" >/dev/null
  for cf in "${CFS[@]}"; do ldb --db="$W/$mode/log" --column_family="$cf" compact >/dev/null; done
  ldb --db="$W/$mode/log" list_live_files_metadata >"$W/$mode.files"
  printf '%-13s' "$mode"
  total=0
  for cf in "${CFS[@]}"; do
    bytes=$(awk -v cf="$cf" '/^===== Column Family: / {on = ($4 == cf)} on && /\.sst$/ {print $1}' "$W/$mode.files" |
            xargs -r stat -c %s | awk '{s += $1} END {print s + 0}')
    total=$((total + bytes))
    awk -v b="$bytes" -v e="$EVENTS" 'BEGIN {printf " %10.1f", b / e}'
  done
  awk -v b="$total" -v e="$EVENTS" 'BEGIN {printf " %10.1f\n", b / e}'
done
record=$("$BUILD/tools/yna-tool" --data-dir "$W/engine" export 2>/dev/null | wc -c)
awk -v b="$record" -v e="$EVENTS" 'BEGIN {printf "record (JSON line, yna-tool export): %.1f bytes per event\n", b / e}'
