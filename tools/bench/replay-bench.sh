#!/usr/bin/env bash
# Replay speed and recovery time over a large log. Writes CALLS calls (5 events each,
# decided by the engine's own decide and appended through storage::event_log, see
# tools/bench/log_gen.cpp) twice: once with the persisted call states the engine writes
# with every batch (contract §9), and once without (--no-state: events only, so start-up
# folds the whole log, as before the persisted state existed). Then, RUNS times each,
# the median printed:
#   - `yna-tool replay` over the log: events/s of the fold (hash chain checked, the
#     persisted state compared when there is one), and the command's wall time;
#   - yna-engine's recovery: wall time from exec to its "listening" line, and the
#     engine's own "recovered … in N ms" figure. The engine persists what it folded, so
#     each run of the nostate variant starts from a fresh copy of its folder.
# Usage: tools/bench/replay-bench.sh [BUILD_DIR] [CALLS] [RUNS] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}; CALLS=${2:-250000}; RUNS=${3:-3}; WORK=${4:-$(mktemp -d)}
mkdir -p "$WORK"
GEN="$BUILD/tools/yna-log-gen"; TOOL="$BUILD/tools/yna-tool"; ENGINE="$BUILD/transport/yna-engine"
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT

median() { grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { date +%s%3N; }

for variant in nostate state; do
  if [ ! -d "$WORK/$variant/log" ]; then
    flag=; [ "$variant" = nostate ] && flag=--no-state
    echo "writing $((CALLS * 5)) events to $WORK/$variant ($variant) ..." >&2
    "$GEN" --data-dir "$WORK/$variant" --calls "$CALLS" $flag >&2
  fi
done

echo "# $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)"
echo "# replay: $TOOL --data-dir DIR --json replay (RUNS=$RUNS)"
for variant in nostate state; do
  rates=; walls=
  for _ in $(seq "$RUNS"); do
    t0=$(now_ms)
    out=$("$TOOL" --data-dir "$WORK/$variant" --json replay)
    walls+="$(( $(now_ms) - t0 ))"$'\n'
    rates+="$(grep -o '"eventsPerSecond":[0-9]*' <<<"$out" | cut -d: -f2)"$'\n'
    events=$(grep -o '"events":[0-9]*' <<<"$out" | cut -d: -f2)
    ok=$(grep -o '"ok":[a-z]*' <<<"$out" | head -1 | cut -d: -f2)
  done
  echo "replay $variant: $events events, ok=$ok, median $(median <<<"$rates") events/s (fold), median wall $(median <<<"$walls") ms (open + fold + exit); runs: $(tr '\n' ' ' <<<"$rates")"
done

echo "# recovery: $ENGINE --data-dir DIR --listen 127.0.0.1:0, exec to 'listening' (RUNS=$RUNS)"
for variant in nostate state; do
  walls=; own=
  for _ in $(seq "$RUNS"); do
    rm -f "$WORK/engine.out" "$WORK/engine.err"  # no line of the previous run may be read
    dir="$WORK/$variant"
    if [ "$variant" = nostate ]; then rm -rf "$WORK/run"; cp -a "$dir" "$WORK/run"; dir="$WORK/run"; fi
    t0=$(now_ms)
    "$ENGINE" --data-dir "$dir" --listen 127.0.0.1:0 >"$WORK/engine.out" 2>"$WORK/engine.err" &
    PID=$!
    until grep -q listening "$WORK/engine.out" 2>/dev/null; do
      kill -0 "$PID" 2>/dev/null || { cat "$WORK/engine.err" >&2; exit 1; }
      sleep 0.01
    done
    walls+="$(( $(now_ms) - t0 ))"$'\n'
    own+="$(grep -o 'folded in [0-9]* ms' "$WORK/engine.err" | grep -o '[0-9]* ms' | cut -d' ' -f1)"$'\n'
    recovered=$(grep -o 'recovered .* ms' "$WORK/engine.err")
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  done
  echo "recovery $variant: median $(median <<<"$walls") ms to listening (runs: $(tr '\n' ' ' <<<"$walls")), engine's own recovery median $(median <<<"$own") ms; last: $recovered"
done
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs kept in $WORK (remove when done)"
