#!/usr/bin/env bash
# Start-up time over a long history (issue 15, contract §9: "start-up time depends on the
# live state, not on the length of the history"): wall time from exec of yna-engine to
# its first `GET /readyz` answered 200, on a data folder of EVENTS events made by
# yna-log-gen (tools/bench/log_gen.cpp: 4 events a call, the engine's own decide and log).
#
#   tools/bench/startup.sh                                # 10,000,000 events, 5 starts
#   EVENTS=200000 RUNS=3 tools/bench/startup.sh           # smoke run
#   EVENTS=10000000 LIVE_CALLS=10000 tools/bench/startup.sh
#
# The folder is generated once (DIR, default /tmp/yna-startup-<EVENTS>[-live<N>][-<hash
# of GEN_FLAGS>]) and reused by later runs with the same settings; 10M events take a
# while (progress: MiB written so far). Then RUNS times: the engine starts on it
# (127.0.0.1, a free port), /readyz is polled every POLL seconds (default 0.005; bash's
# /dev/tcp, no process per poll), the time is taken at the first 200, the engine is
# stopped (SIGTERM) and waited for. Each run prints:
#   ready     exec to /readyz 200, ms: the figure
#   listening exec to the engine's "listening" line on stdout, ms
#   rss       VmRSS of the engine once ready (what start-up loaded)
#   engine    the engine's own "recovered …" log line, when it prints one
# then the median with min–max. A warning follows any run in which the engine wrote
# events at start-up (yna_events_total half a second after ready): later runs then
# start from another log than the first.
#
# Settings (environment): BUILD (build), EVENTS (10000000), LIVE_CALLS (unset: passes
# --live-calls N to yna-log-gen, calls left not ended at the end; needs a yna-log-gen
# that has the flag), RUNS (5), POLL (0.005), DIR (see above), GEN_FLAGS (more yna-log-gen
# flags, e.g. --no-state), ENGINE_FLAGS (default "--invite-timeout 0
# --answer-timeout 0 --max-call-duration 0": the live calls' timers, long expired by the
# generator's clock, would otherwise end them at the first start and change the log for
# the next; --snapshot-every 0 is added when the engine has that flag, so that no start
# leaves a snapshot for the next). Needs curl. Figures on a loaded machine are not
# figures: the load average is printed at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
case ${1:-} in -h|--help) sed -n '2,33p' "$0"; exit 0 ;; ?*) echo "no arguments; settings are environment variables (--help)" >&2; exit 2 ;; esac
BUILD=${BUILD:-build}
EVENTS=${EVENTS:-10000000}
LIVE_CALLS=${LIVE_CALLS:-}
RUNS=${RUNS:-5}
POLL=${POLL:-0.005}
GEN_FLAGS=${GEN_FLAGS:-}
ENGINE_FLAGS=${ENGINE_FLAGS---invite-timeout 0 --answer-timeout 0 --max-call-duration 0}
ENGINE=$BUILD/transport/yna-engine GEN=$BUILD/tools/yna-log-gen
for b in "$ENGINE" "$GEN"; do
  [ -x "$b" ] || { echo "$b missing: ninja -C $BUILD transport/yna-engine tools/yna-log-gen" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)" >&2; exit 2; }
# yna-log-gen: 5 events per call (start, ringing, connected, end, retire), 3 per call left live.
CALLS=$(( (EVENTS + 2 * ${LIVE_CALLS:-0}) / 5 ))
gen_cmd=("$GEN" --calls "$CALLS")
[ -n "$LIVE_CALLS" ] && gen_cmd+=(--live-calls "$LIVE_CALLS")
read -ra gflags <<<"$GEN_FLAGS"
gen_cmd+=("${gflags[@]}")
DIR=${DIR:-/tmp/yna-startup-$EVENTS${LIVE_CALLS:+-live$LIVE_CALLS}${GEN_FLAGS:+-$(md5sum <<<"$GEN_FLAGS" | cut -c1-6)}}
read -ra eflags <<<"$ENGINE_FLAGS"
"$ENGINE" --help | grep -q -- '--snapshot-every' && eflags+=(--snapshot-every 0)

PID=''
cleanup() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

uptime
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

# ------------------------------------------------------------------ the data folder
# DIR/.generated holds the generator's command once it has finished; DIR/.generating
# marks a generation of ours that did not finish (removed and done again).
want="${gen_cmd[*]:1}"
if [ -f "$DIR/.generated" ] && [ "$(cat "$DIR/.generated")" = "$want" ]; then
  echo "reusing $DIR ($(du -sh "$DIR/log" | cut -f1); made by yna-log-gen $want)"
else
  if [ -e "$DIR" ]; then
    if [ -f "$DIR/.generating" ] || [ -f "$DIR/.generated" ]; then
      echo "removing $DIR (an unfinished generation or other settings)"
      rm -rf "$DIR"
    else
      echo "$DIR exists and was not made by this script: remove it or set DIR" >&2; exit 2
    fi
  fi
  mkdir -p "$DIR"
  echo "$want" >"$DIR/.generating"
  echo "generating $EVENTS events ($CALLS calls${LIVE_CALLS:+, $LIVE_CALLS left live}) in $DIR: ${gen_cmd[*]} --data-dir $DIR"
  t0=$EPOCHREALTIME
  "${gen_cmd[@]}" --data-dir "$DIR" >"$DIR/.gen.out" 2>"$DIR/.gen.err" &
  GPID=$!
  while kill -0 "$GPID" 2>/dev/null; do
    sleep 5
    kill -0 "$GPID" 2>/dev/null &&
      printf '  %6.0f s  %s written\n' "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$(du -sh "$DIR/log" 2>/dev/null | cut -f1)"
  done
  wait "$GPID" || { echo "yna-log-gen failed:" >&2; cat "$DIR/.gen.err" >&2; exit 1; }
  cat "$DIR/.gen.out"
  mv "$DIR/.generating" "$DIR/.generated"
fi

# ------------------------------------------------------------------ the starts
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }
exec {NAPFD}<> <(:)  # a pipe nobody writes: `read -t` on it sleeps without a process
nap() { read -r -t "$1" -u "$NAPFD" _ || true; }
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }
readyz_ok() {  # one GET /readyz; true on 200
  local line=''
  { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  { printf 'GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&"$fd"; } 2>/dev/null || true
  read -r -t 5 -u "$fd" line || true
  exec {fd}>&-
  [[ $line == "HTTP/1."?" 200"* ]]
}
metric_sum() { curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" 'index($1, n) == 1 { s += $2 } END { print s + 0 }'; }

echo "engine: $ENGINE --listen 127.0.0.1:PORT --data-dir $DIR ${eflags[*]}   (poll /readyz every ${POLL}s)"
times=()
for run in $(seq "$RUNS"); do
  port=$(free_port)
  rm -f "$DIR/.engine.out" "$DIR/.engine.err"
  t0=$EPOCHREALTIME
  "$ENGINE" --listen "127.0.0.1:$port" --data-dir "$DIR" "${eflags[@]}" >"$DIR/.engine.out" 2>"$DIR/.engine.err" &
  PID=$!
  t_listen=''
  until readyz_ok "$port"; do
    [ -z "$t_listen" ] && grep -q listening "$DIR/.engine.out" 2>/dev/null && t_listen=$EPOCHREALTIME
    kill -0 "$PID" 2>/dev/null || { echo "the engine exited:" >&2; tail -20 "$DIR/.engine.err" >&2; exit 1; }
    nap "$POLL"
  done
  t1=$EPOCHREALTIME
  [ -z "$t_listen" ] && t_listen=$t1  # it printed the line between two polls
  ready=$(ms_since "$t0" "$t1")
  times+=("$ready")
  rss=$(awk '/^VmRSS:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$PID/status")
  own=$(grep -o 'recovered .*' "$DIR/.engine.err" | head -1 || true)
  nap 0.5
  written=$(metric_sum "$port" 'yna_events_total{')
  printf 'run %d: ready %8.1f ms   listening %8.1f ms   rss %s   engine: %s\n' "$run" "$ready" "$(ms_since "$t0" "$t_listen")" "$rss" "${own:-(no recovered line)}"
  [ "$written" != 0 ] && echo "  warning: the engine wrote $written events at start-up: the next run starts from a longer log"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  PID=''
done
printf '%s\n' "${times[@]}" | sort -g | awk -v e="$EVENTS" -v l="${LIVE_CALLS:-0}" '{ v[NR] = $1 } END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "exec to /readyz 200: median %.1f ms (min %.1f, max %.1f; %d runs) on %d events, %d calls left live\n", m, v[1], v[NR], NR, e, l }'
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
