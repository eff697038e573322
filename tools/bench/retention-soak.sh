#!/usr/bin/env bash
# State over time (issue 15, contract §9): does the engine's memory stay flat while it
# handles millions of calls, with ended calls retired after --call-retention?
#
#   tools/bench/retention-soak.sh                          # 2,000,000 calls, output in a fresh /tmp/yna-soak.XXXXXX
#   CALLS=20000 INTERVAL=1 tools/bench/retention-soak.sh   # smoke run (about a minute)
#
# Starts the real yna-engine (BUILD/transport/yna-engine, port 0, a fresh data folder
# under OUT, removed at the end unless KEEP_DATA=1) with `--call-retention RETENTION`
# and no per-client limits (the flags of run-all.sh), then yna-loadgen -n CALLS with a
# mix of endings (answered and ended by the callee, full flows ended by the caller,
# cancelled, declined, busy; real PoP per request, notifications checked). Every
# INTERVAL seconds it samples:
#   calls_handled     calls yna-loadgen has finished (its progress line; the engine counts
#                     events, not calls), events_accepted (yna_events_total{outcome="accepted"})
#   rss_kib           VmRSS of the engine (/proc/PID/status)
#   calls_in_memory   sum of yna_calls_in_memory{state=…}, and its live and ended series;
#                     empty when the engine has no such metric
#   active_calls      yna_active_calls (calls not ended)
#   engine_cpu_s, rocksdb_cpu_s   CPU seconds (user + system) of the engine since it
#                     started, and of RocksDB's background threads alone (rocksdb:*, flushes
#                     and compactions), from /proc/PID/task: how much of the machine the
#                     log's compactions take as the history grows
#   log_memtables_kib, log_cache_kib   yna_log_memory_bytes{part=memtables|block_cache}:
#                     RocksDB's memtables and its block cache (which the memtables are
#                     charged to, so the cache is RocksDB's whole budget: --log-memory)
#   loop_max_us       yna_reactor_loop_max_microseconds (longest iteration since start)
#   loop_p999_ms      p99.9 of the reactor loop iterations of that interval (from the
#                     difference of two scrapes of the yna_reactor_loop_seconds histogram)
#   loop_le_<bound>   the histogram's cumulative bucket counts, as scraped
# One progress line per sample. After the load, TAIL more seconds of samples (phase
# `tail`: the ended calls should retire and calls in memory fall to the live ones).
#
# Output (OUT): soak.csv (the samples), soak.png (RSS in MiB and calls in memory against
# calls handled; plot.gp re-draws it), summary.txt, engine.out/err, loadgen.log (its
# progress) and loadgen.json (its report). The summary:
#   RSS slope         least squares of rss_kib over calls_handled, load samples after the
#                     first 20 % of the calls (WARMUP_FRACTION), in KiB per 1,000 calls:
#                     ≈ 0 when memory does not grow with the calls handled (the log's
#                     memtables and caches make RSS wobble by some MiB; read the slope
#                     next to the plot, and over a run long enough for them to fill)
#   calls in memory   the largest sample: at a steady rate about rate × retention + the
#                     calls in flight; `n/a` when the metric is missing
#   loop p99.9, max   of every reactor iteration of the run, from the histogram (p99.9
#                     interpolated within its bucket, as Prometheus' histogram_quantile;
#                     the bucket bounds are given) and from the max gauge
#
# Profiles along the run: PERF_AT="150000 1500000" runs `perf record -g` on the engine for
# PERF_SECS (20) seconds at PERF_HZ (499) when the calls handled first reach each figure,
# into OUT/perf-<calls>.data, and writes the flat profile of each (self time by library
# and function) to OUT/perf-<calls>.txt: what costs more late in a run than early.
# Settings (environment): BUILD (build), CALLS (2000000), USERS (32 loadgen users, i.e.
# calls in flight), THREADS (2 loadgen threads), MIX (answer:4,full:1,cancel:2,decline:1,busy:1),
# RETENTION (2 seconds; empty: no --call-retention flag; left out with a warning when the
# engine does not know the flag), ENGINE_FLAGS (more engine flags, e.g. "--unsafe-no-fsync"),
# LOADGEN_FLAGS (more loadgen flags), INTERVAL (5 s), TAIL (RETENTION + 3 intervals),
# WARMUP_FRACTION (0.2), OUT (a fresh /tmp/yna-soak.XXXXXX), KEEP_DATA (0).
# Cost: the smoke run handled about 400 calls/s on 2 loaded cores (2M calls: 1–2 hours) and
# its log took about 5 KB of disk per call (2M calls: about 10 GB under OUT).
# Needs gnuplot (Debian package gnuplot-nox), curl and jq: installs what is missing with
# apt-get when run as root. The figures are only figures on an idle machine: the load
# average is printed at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
case ${1:-} in -h|--help) sed -n '2,58p' "$0"; exit 0 ;; ?*) echo "no arguments; settings are environment variables (--help)" >&2; exit 2 ;; esac
BUILD=${BUILD:-build}
CALLS=${CALLS:-2000000}
USERS=${USERS:-32}
THREADS=${THREADS:-2}
MIX=${MIX:-answer:4,full:1,cancel:2,decline:1,busy:1}
RETENTION=${RETENTION-2}
ENGINE_FLAGS=${ENGINE_FLAGS:-}
LOADGEN_FLAGS=${LOADGEN_FLAGS:-}
INTERVAL=${INTERVAL:-5}
WARMUP_FRACTION=${WARMUP_FRACTION:-0.2}
KEEP_DATA=${KEEP_DATA:-0}
OUT=${OUT:-$(mktemp -d /tmp/yna-soak.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need=()
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root" >&2; exit 2; }
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2; }
fi
ENGINE=$BUILD/transport/yna-engine LOADGEN=$BUILD/tools/yna-loadgen
for b in "$ENGINE" "$LOADGEN"; do
  [ -x "$b" ] || { echo "$b missing: ninja -C $BUILD transport/yna-engine tools/yna-loadgen" >&2; exit 2; }
done

retention_flag=()
if [ -n "$RETENTION" ]; then
  if "$ENGINE" --help | grep -q -- '--call-retention'; then
    retention_flag=(--call-retention "$RETENTION")
  else
    echo "warning: $ENGINE has no --call-retention: runs without it (ended calls stay in memory)" >&2
  fi
fi
RET_DESC="no --call-retention"; [ ${#retention_flag[@]} -gt 0 ] && RET_DESC="--call-retention $RETENTION"
TAIL=${TAIL:-$(awk -v r="${RETENTION:-0}" -v i="$INTERVAL" 'BEGIN { print r + 3 * i }')}

DATA=$OUT/data
EPID='' LPID=''
cleanup() {
  for p in $LPID $EPID; do kill "$p" 2>/dev/null || true; done
  for p in $LPID $EPID; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP_DATA" = 1 ]; then echo "data folder kept: $DATA" >&2; else rm -rf "$DATA"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

uptime
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# ------------------------------------------------------------------ engine and load
rm -rf "$DATA" "$OUT"/{soak.csv,soak.png,summary.txt,loadgen.log,loadgen.json}; mkdir -p "$DATA"
read -ra eflags <<<"$ENGINE_FLAGS"; read -ra lflags <<<"$LOADGEN_FLAGS"
ENGINE_CMD=("$ENGINE" --listen 127.0.0.1:0 --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0
            --max-connections-per-ip 0 --max-connections 30000 --max-calls-per-number 0
            --max-ringing-per-number 0 "${retention_flag[@]}" "${eflags[@]}")
echo "engine: ${ENGINE_CMD[*]}"
"${ENGINE_CMD[@]}" >"$OUT/engine.out" 2>"$OUT/engine.err" &
EPID=$!
for _ in $(seq 600); do
  grep -q listening "$OUT/engine.out" 2>/dev/null && break
  kill -0 "$EPID" 2>/dev/null || { echo "the engine exited:" >&2; cat "$OUT/engine.err" >&2; exit 1; }
  sleep 0.05
done
EPORT=$(grep -o '[0-9]*$' "$OUT/engine.out")
# Tokens for a day (the engine's default --max-token-lifetime): a 2M-call run takes hours.
LOADGEN_CMD=("$LOADGEN" --port "$EPORT" --data-dir "$DATA" --engine-pid "$EPID" --json --threads "$THREADS"
             -c "$USERS" -n "$CALLS" --mix "$MIX" --token-ttl 86400 "${lflags[@]}")
echo "load: ${LOADGEN_CMD[*]}"

# ------------------------------------------------------------------ sampling
# scrape: sets M_EVENTS M_LIVE M_ENDED M_MEM M_ACTIVE M_LOOPMAX M_LES M_COUNTS (empty
# when absent) from the engine's /metrics
scrape() {
  local m
  m=$(curl -s --max-time 10 "http://127.0.0.1:$EPORT/metrics" || true)
  eval "$(awk '
    $1 == "yna_events_total{outcome=\"accepted\"}" { ev = $2 }
    $1 == "yna_calls_in_memory{state=\"live\"}" { live = $2 }
    $1 == "yna_calls_in_memory{state=\"ended\"}" { ended = $2 }
    $1 == "yna_calls_in_memory" || index($1, "yna_calls_in_memory{") == 1 { mem += $2; has_mem = 1 }
    $1 == "yna_active_calls" { act = $2 }
    $1 == "yna_log_memory_bytes{part=\"memtables\"}" { lmt = int($2 / 1024) }
    $1 == "yna_log_memory_bytes{part=\"block_cache\"}" { lbc = int($2 / 1024) }
    $1 == "yna_reactor_loop_max_microseconds" { lmax = $2 }
    index($1, "yna_reactor_loop_seconds_bucket{le=\"") == 1 {
      le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
      les = les (les == "" ? "" : " ") le; cs = cs (cs == "" ? "" : " ") $2 + 0
    }
    END {
      printf "M_EVENTS=\"%s\" M_LIVE=\"%s\" M_ENDED=\"%s\" M_MEM=\"%s\" M_ACTIVE=\"%s\" M_LOOPMAX=\"%s\" M_LES=\"%s\" M_COUNTS=\"%s\" M_LMT=\"%s\" M_LBC=\"%s\"\n",
             ev, live, ended, has_mem ? mem : "", act, lmax, les, cs, lmt, lbc
    }' <<<"$m" | tr -cd 'A-Za-z0-9_=". +\n-')"
}
# quantile Q "LE..." "CUMULATIVE COUNTS..." [MAX_US]: in ms, interpolated within its
# bucket and capped at MAX_US (the max gauge; interpolation may overshoot it); ">X"
# when it lies in the +Inf bucket; empty when there is no observation
quantile() {
  awk -v q="$1" -v les="$2" -v cs="$3" -v cap="${4:-}" 'BEGIN {
    n = split(les, le, " "); split(cs, c, " "); total = c[n]
    if (n == 0 || total <= 0) exit
    rank = q * total; lo = 0; prev = 0
    for (i = 1; i <= n; i++) {
      if (c[i] >= rank) {
        if (le[i] == "+Inf") { printf ">%g\n", lo * 1000; exit }
        v = lo + (le[i] - lo) * (rank - prev) / (c[i] - prev)
        if (cap != "" && v > cap / 1e6) v = cap / 1e6
        printf "%.3f\n", v * 1000; exit
      }
      lo = le[i]; prev = c[i]
    }
  }'
}
# bucket_of Q "LE..." "COUNTS...": the bounds of the bucket the quantile falls in, in ms
bucket_of() {
  awk -v q="$1" -v les="$2" -v cs="$3" 'BEGIN {
    n = split(les, le, " "); split(cs, c, " "); total = c[n]
    if (n == 0 || total <= 0) exit
    lo = 0
    for (i = 1; i <= n; i++) { if (c[i] >= q * total) { printf "%g–%s ms\n", lo * 1000, le[i] == "+Inf" ? "∞" : le[i] * 1000; exit } lo = le[i] }
  }'
}
minus() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); for (i = 1; i <= n; i++) printf "%s%.0f", (i > 1 ? " " : ""), x[i] - y[i]; print "" }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$EPID/status" 2>/dev/null || true; }
# cpu_by_thread: "ENGINE_S ROCKSDB_S" seconds of CPU (user + system) of the engine as a
# whole and of RocksDB's own background threads (flushes and compactions: rocksdb:*)
cpu_by_thread() {
  local hz t total=0 rocks=0 comm ticks
  hz=$(getconf CLK_TCK)
  for t in /proc/"$EPID"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    ticks=$(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null) || continue
    total=$((total + ticks))
    case $comm in rocksdb:*) rocks=$((rocks + ticks)) ;; esac
  done
  awk -v a="$total" -v b="$rocks" -v hz="$hz" 'BEGIN { printf "%.1f %.1f\n", a / hz, b / hz }'
}
calls_done() {  # after the load: loadgen's report (its last progress line may be a second old)
  if [ -n "$LOAD_DONE" ] && [ -s "$OUT/loadgen.json" ]; then
    jq '.calls_completed + .calls_failed + .calls_refused' "$OUT/loadgen.json" && return
  fi
  tail -c 2000 "$OUT/loadgen.log" 2>/dev/null | grep -o ', calls [0-9]*' | tail -1 | grep -o '[0-9]*$' || echo 0; }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "?"; else printf "%.1f", k / 1024 }'; }

CSV=$OUT/soak.csv
LOAD_DONE=''
T0=$(date +%s.%N)
FIRST_COUNTS='' PREV_COUNTS='' LAST_COUNTS='' LES=''
M_EVENTS='' M_LIVE='' M_ENDED='' M_MEM='' M_ACTIVE='' M_LOOPMAX='' M_LES='' M_COUNTS='' M_LMT='' M_LBC=''
sample() {  # sample PHASE: one CSV row and one progress line
  local calls rss t p999 buckets cpu_s rocks_cpu_s
  calls=$(calls_done); rss=$(rss_kib)
  read -r cpu_s rocks_cpu_s <<<"$(cpu_by_thread)"
  scrape
  t=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ -z "$LES" ] && [ -n "$M_LES" ]; then
    LES=$M_LES
    FIRST_COUNTS=$M_COUNTS
    PREV_COUNTS=$M_COUNTS
    echo "t_s,phase,calls_handled,events_accepted,rss_kib,calls_in_memory,calls_in_memory_live,calls_in_memory_ended,active_calls,log_memtables_kib,log_cache_kib,engine_cpu_s,rocksdb_cpu_s,loop_max_us,loop_p999_ms,$(for b in $LES; do printf 'loop_le_%s,' "$b"; done | sed 's/,$//')" >"$CSV"
  fi
  p999=
  if [ -n "$M_COUNTS" ] && [ "$M_LES" = "$LES" ]; then
    p999=$(quantile 0.999 "$LES" "$(minus "$M_COUNTS" "$PREV_COUNTS")" "$M_LOOPMAX")
    PREV_COUNTS=$M_COUNTS
    LAST_COUNTS=$M_COUNTS
  fi
  buckets=$(tr ' ' ',' <<<"$M_COUNTS")
  [ -f "$CSV" ] && echo "$t,$1,$calls,$M_EVENTS,$rss,$M_MEM,$M_LIVE,$M_ENDED,$M_ACTIVE,$M_LMT,$M_LBC,$cpu_s,$rocks_cpu_s,$M_LOOPMAX,$p999,$buckets" >>"$CSV"
  printf '[%7.1f s] %-4s calls %9s  rss %8s MiB (log: memtables %s, cache %s MiB)  in memory %8s (live %s, ended %s)  not ended %s  loop p99.9 %s ms, max %s ms\n' \
    "$t" "$1" "$calls" "$(mib "$rss")" "$(mib "$M_LMT")" "$(mib "$M_LBC")" "${M_MEM:-n/a}" "${M_LIVE:-n/a}" "${M_ENDED:-n/a}" "${M_ACTIVE:-?}" "${p999:-–}" \
    "$(awk -v u="$M_LOOPMAX" 'BEGIN { if (u == "") print "?"; else printf "%.2f", u / 1000 }')"
}

# perf_check CALLS: starts the next profile of PERF_AT once the calls handled reach it
read -ra PERF_LEFT <<<"${PERF_AT:-}"
PERF_RUNS=()
if [ ${#PERF_LEFT[@]} -gt 0 ] && ! command -v perf >/dev/null; then
  echo "PERF_AT needs perf (apt-get install linux-perf): no profiles" >&2; PERF_LEFT=()
fi
perf_check() {
  [ ${#PERF_LEFT[@]} -gt 0 ] && [ "$1" -ge "${PERF_LEFT[0]}" ] || return 0
  local at=${PERF_LEFT[0]}
  PERF_LEFT=("${PERF_LEFT[@]:1}")
  echo "profiling the engine at $1 calls for ${PERF_SECS:-20} s: $OUT/perf-$at.data"
  perf record -q -F "${PERF_HZ:-499}" -g -p "$EPID" -o "$OUT/perf-$at.data" -- sleep "${PERF_SECS:-20}" \
    >"$OUT/perf-$at.log" 2>&1 &
  PERF_RUNS+=("$at")
}

sample idle
"${LOADGEN_CMD[@]}" >"$OUT/loadgen.json" 2>"$OUT/loadgen.log" &
LPID=$!
LOAD_T0=$(date +%s.%N)
while kill -0 "$LPID" 2>/dev/null; do
  sleep "$INTERVAL"
  kill -0 "$EPID" 2>/dev/null || { echo "the engine died:" >&2; tail -20 "$OUT/engine.err" >&2; exit 1; }
  kill -0 "$LPID" 2>/dev/null && sample load && perf_check "$(calls_done)"
done
wait_perf() { local j; for j in $(jobs -p); do [ "$j" = "$EPID" ] || [ "$j" = "${LPID:-}" ] || wait "$j" 2>/dev/null || true; done; }
LRC=0; wait "$LPID" || LRC=$?
LPID='' LOAD_DONE=1
LOAD_S=$(awk -v a="$LOAD_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
sample load
for _ in $(seq "$(awk -v t="$TAIL" -v i="$INTERVAL" 'BEGIN { print int((t + i - 1) / i) }')"); do
  sleep "$INTERVAL"
  sample tail
done
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$EPID/status")
wait_perf
for at in "${PERF_RUNS[@]}"; do
  # Whole reports to files first: head closing a pipe would fail the script (pipefail).
  perf report -i "$OUT/perf-$at.data" --no-children --sort dso --stdio -g none >"$OUT/perf-$at.dso" 2>/dev/null || true
  perf report -i "$OUT/perf-$at.data" --no-children --sort dso,symbol --stdio -g none >"$OUT/perf-$at.sym" 2>/dev/null || true
  { echo "# perf record at $at calls: self time by library, then by function (top 40)"
    grep -v '^#' "$OUT/perf-$at.dso" | grep -v '^$' | sed -n '1,15p'
    echo
    grep -v '^#' "$OUT/perf-$at.sym" | grep -v '^$' | sed -n '1,40p'
  } >"$OUT/perf-$at.txt"
  echo "profile at $at calls: $OUT/perf-$at.txt"
done

# ------------------------------------------------------------------ summary
col() { head -1 "$CSV" | tr ',' '\n' | grep -nx "$1" | cut -d: -f1; }
C_CALLS=$(col calls_handled) C_RSS=$(col rss_kib) C_MEM=$(col calls_in_memory) C_ACT=$(col active_calls)
C_LIVE=$(col calls_in_memory_live) C_PHASE=$(col phase)
FINAL_CALLS=$(calls_done)
slope=$(awk -F, -v cx="$C_CALLS" -v cy="$C_RSS" -v cp="$C_PHASE" -v from="$(awk -v n="$FINAL_CALLS" -v f="$WARMUP_FRACTION" 'BEGIN { print n * f }')" '
  NR > 1 && $cp == "load" && $cx >= from && $cy != "" { n++; sx += $cx; sy += $cy; sxx += $cx * $cx; sxy += $cx * $cy }
  END {
    d = n * sxx - sx * sx
    if (n < 2 || d == 0) { print "n/a (fewer than 2 samples after the warm-up: lower INTERVAL or raise CALLS)"; exit }
    printf "%.3f KiB per 1,000 calls (%d samples)\n", (n * sxy - sx * sy) / d * 1000, n
  }' "$CSV")
maxmem=$(awk -F, -v c="$C_MEM" 'NR > 1 && $c != "" { has = 1; if ($c + 0 > m) m = $c + 0 } END { print has ? m : "n/a (no yna_calls_in_memory in /metrics)" }' "$CSV")
maxact=$(awk -F, -v c="$C_ACT" 'NR > 1 && $c != "" { if ($c + 0 > m) m = $c + 0 } END { print m + 0 }' "$CSV")
run_counts=$(minus "${LAST_COUNTS:-}" "$FIRST_COUNTS")
iterations=$(awk '{ print $NF }' <<<"$run_counts")
passed=$(jq -r '.passed // "?"' "$OUT/loadgen.json" 2>/dev/null || echo "?")
errors=$(jq -c '.errors // {}' "$OUT/loadgen.json" 2>/dev/null || echo "?")
{
  echo "--- retention soak: $FINAL_CALLS calls in $LOAD_S s ($(awk -v n="$FINAL_CALLS" -v s="$LOAD_S" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }') calls/s), mix $MIX, $USERS users, $RET_DESC"
  echo "loadgen: exit $LRC, passed $passed, errors $errors"
  echo "RSS: first $(mib "$(awk -F, -v c="$C_RSS" 'NR == 2 { print $c }' "$CSV")") MiB, last load sample $(mib "$(awk -F, -v c="$C_RSS" -v cp="$C_PHASE" 'NR > 1 && $cp == "load" { v = $c } END { print v }' "$CSV")") MiB, after the tail $(mib "$(rss_kib)") MiB, peak (VmHWM) $(mib "$HWM") MiB"
  echo "RSS slope after the first $(awk -v f="$WARMUP_FRACTION" 'BEGIN { print f * 100 }') % of the calls: $slope"
  echo "calls in memory, max of the samples: $maxmem (last sample: $(awk -F, -v c="$C_MEM" 'NR > 1 { v = $c } END { print v == "" ? "n/a" : v }' "$CSV")); calls not ended (yna_active_calls), max: $maxact"
  echo "reactor loop over the run ($iterations iterations): p99.9 $(quantile 0.999 "$LES" "$run_counts" "$M_LOOPMAX") ms (bucket $(bucket_of 0.999 "$LES" "$run_counts")), p99 $(quantile 0.99 "$LES" "$run_counts" "$M_LOOPMAX") ms, max $(awk -v u="$M_LOOPMAX" 'BEGIN { printf "%.3f", u / 1000 }') ms (yna_reactor_loop_max_microseconds)"
  C_ECPU=$(col engine_cpu_s) C_RCPU=$(col rocksdb_cpu_s)
  echo "CPU: $(awk -F, -v cc="$C_CALLS" -v ce="$C_ECPU" -v cr="$C_RCPU" -v cp="$C_PHASE" -v n="$FINAL_CALLS" '
    NR > 1 && $cp == "load" && $ce != "" { c[++k] = $cc; e[k] = $ce; r[k] = $cr }
    function share(lo, hi,   i, a, b) { a = 0; b = 0
      for (i = 1; i <= k; i++) if (c[i] >= lo) { a = i; break }
      for (i = k; i >= 1; i--) if (c[i] <= hi) { b = i; break }
      if (a == 0 || b <= a || e[b] - e[a] <= 0) return "n/a"
      return sprintf("%.0f %% (%.0f µs of engine CPU per call)", 100 * (r[b] - r[a]) / (e[b] - e[a]), 1e6 * (e[b] - e[a]) / (c[b] - c[a])) }
    END { if (k == 0) { print "n/a"; exit }
      printf "engine %.0f s, RocksDB background threads %.0f s; their share in the first fifth of the calls %s, in the last fifth %s\n", e[k], r[k], share(0, n / 5), share(n * 4 / 5, n) }' "$CSV")"
  echo "log on disk: $(du -sh "$DATA" | cut -f1), events accepted $M_EVENTS"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/summary.txt"

# ------------------------------------------------------------------ plot
plots="\"$CSV\" using (\$$C_CALLS/1000):(\$$C_RSS/1024) axes x1y1 with lines lw 2 lc rgb '#1f77b4' title 'engine RSS (MiB)'"
if awk -F, -v c="$C_MEM" 'NR > 1 && $c != "" { found = 1 } END { exit !found }' "$CSV"; then
  plots+=", \"$CSV\" using (\$$C_CALLS/1000):$C_MEM axes x1y2 with lines lw 2 lc rgb '#d62728' title 'calls in memory (yna_calls_in_memory)'"
  plots+=", \"$CSV\" using (\$$C_CALLS/1000):$C_LIVE axes x1y2 with lines dt 2 lc rgb '#ff7f0e' title 'of which live'"
  note=
else
  note=" (no yna_calls_in_memory metric: not plotted)"
fi
C_LBC=$(col log_cache_kib) C_LMT=$(col log_memtables_kib)
if awk -F, -v c="$C_LBC" 'NR > 1 && $c != "" { found = 1 } END { exit !found }' "$CSV"; then
  plots+=", \"$CSV\" using (\$$C_CALLS/1000):(\$$C_LBC/1024) axes x1y1 with lines lw 1 lc rgb '#9467bd' title 'log block cache, memtables included (MiB)'"
  plots+=", \"$CSV\" using (\$$C_CALLS/1000):(\$$C_LMT/1024) axes x1y1 with lines dt 2 lc rgb '#8c564b' title 'log memtables (MiB)'"
fi
plots+=", \"$CSV\" using (\$$C_CALLS/1000):$C_ACT axes x1y2 with lines lw 1 lc rgb '#2ca02c' title 'calls not ended (yna_active_calls)'"
cat >"$OUT/plot.gp" <<EOF
# gnuplot $OUT/plot.gp  (written by tools/bench/retention-soak.sh)
set terminal pngcairo size 1200,700 font ",11" noenhanced
set output "$OUT/soak.png"
set datafile separator ","
set key below
set grid
set title "yna-engine over $FINAL_CALLS calls, $RET_DESC, mix $MIX$note"
set xlabel "calls handled (thousands)"
set ylabel "RSS (MiB)"
set y2label "calls"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot $plots
EOF
gnuplot "$OUT/plot.gp"
echo "samples $CSV, plot $OUT/soak.png, summary $OUT/summary.txt"
[ "$LRC" -eq 0 ] || { echo "yna-loadgen exited $LRC: see $OUT/loadgen.json" >&2; exit 1; }
