#!/usr/bin/env bash
# The whole benchmark in one command (BENCHMARKS.md): the engine under yna-loadgen next
# to what bounds it, on this machine, in one run.
#
#   sudo tools/bench/run-all.sh                    # 3 rounds of 10 s, writes BENCHMARKS.md
#   sudo tools/bench/run-all.sh --rounds 5 --seconds 20 --conns 64 --no-md
#
# Each round measures, in this order, one after the other (never two at once):
#   nginx     static `return 200 '{}'` under wrk -t2 -cC            (the HTTP ceiling)
#   start     POST /start, Bearer only, fsync on, every invitation read by a connected callee
#             socket: yna-loadgen --mix start --pop off -c C, closed loop (saturation)
#   start½    the same, open loop at half of this round's saturation rate
#   wrk-start POST /start under wrk (tools/bench/start.lua): no sockets, the cheapest client
#   full      full call flows with a PoP token signed per request, closed loop -c U
#   full½     the same, open loop at half of this round's saturation rate
#   log       yna-logbench: RocksDB one event per sync, batches, threads, and the engine's
#             reactor + log with C appenders
#   pg        PostgreSQL, one INSERT per transaction, synchronous commit, pgbench -cC
#             (autovacuum off: the insert-only table needs none, and its I/O would land
#             in the next round's measurements)
# The last round's start½ run then opens --idle-sockets idle notification sockets (memory
# per socket). Then once: yna-microbench (PoP, JWT, decoding, decide+apply, codec) and
# `openssl speed rsa2048`. Every figure is the median of the
# rounds with min–max; every ratio is taken within a round, then the median of those.
#
# Needs root: installs what is missing (nginx-light postgresql wrk jq, with apt-get), runs
# PostgreSQL as user postgres. Every server listens on 127.0.0.1 only, in a temporary
# folder on the disk of this checkout, and is stopped at the end (also on Ctrl-C). Nothing
# is deleted before the end: on a disk mounted with `discard`, deleting files slows every
# fsync for a while, and that would land in the next measurement.
# Builds the four binaries it runs in BUILD (default build, the project's debugoptimized
# build of the README; --build DIR for another, e.g. one set up with --buildtype=release).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=build ROUNDS=3 SECS=10 CONNS=64 FULL_USERS=32 LG_THREADS=2 IDLE=10000 UPDATE_MD=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --full-users) FULL_USERS=$2; shift 2 ;;
    --loadgen-threads) LG_THREADS=$2; shift 2 ;;
    --idle-sockets) IDLE=$2; shift 2 ;;
    --no-md) UPDATE_MD=0; shift ;;
    *) sed -n '2,26p' "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "run as root (apt-get, PostgreSQL as user postgres)"; exit 2; }
CMDLINE="tools/bench/run-all.sh --rounds $ROUNDS --seconds $SECS --conns $CONNS --full-users $FULL_USERS --loadgen-threads $LG_THREADS"

# --------------------------------------------------------------------------- setup
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v pgbench >/dev/null || need+=(postgresql)
command -v wrk >/dev/null || need+=(wrk)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ ! -f "$BUILD/build.ninja" ]; then
  CXX="${CXX:-$(command -v ccache >/dev/null && echo 'ccache g++' || echo g++)}" meson setup "$BUILD" >&2
fi
ninja -C "$BUILD" -j2 transport/yna-engine tools/yna-loadgen tools/yna-logbench tools/yna-microbench tools/yna-tool >&2
ENGINE=$BUILD/transport/yna-engine LOADGEN=$BUILD/tools/yna-loadgen

WORK=$(mktemp -d "$ROOT/.bench-XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -d "$WORK/pg" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $((20000 + RANDOM % 20000)); }
cpu_of() {  # user+sys seconds of a process and its threads
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
cpu_of_tree() {  # a process and its children (nginx master + workers)
  local total=0 p
  for p in $1 $(pgrep -P "$1"); do total=$(awk -v a="$total" -v b="$(cpu_of "$p")" 'BEGIN { print a + b }'); done
  echo "$total"
}
# median min max of the numbers on stdin
mmm() { sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "nan nan nan"; exit } m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'; }
fig() {  # "median (min–max)" of a series file, with a printf format
  read -r m lo hi < <(mmm <"$WORK/series.$1")
  printf "$2 ($2–$2)" "$m" "$lo" "$hi"
}
put() { echo "$2" >>"$WORK/series.$1"; }
med() { mmm <"$WORK/series.$1" | cut -d' ' -f1; }
settle() { sync; sleep 1; }  # let the previous step's writeback finish before measuring
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.4f", a / b; else print "nan" }'; }

engine_start() {  # fresh engine on a fresh folder; sets EPID EPORT EDATA
  EDATA=$(mktemp -d "$WORK/engine-XXXXXX")
  "$ENGINE" --listen 127.0.0.1:0 --data-dir "$EDATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-connections 30000 --max-calls-per-number 0 --max-ringing-per-number 0 --max-sockets-per-sub 0 "$@" >"$EDATA/out" 2>"$EDATA/err" &
  EPID=$!
  PIDS+=("$EPID")
  for _ in $(seq 200); do grep -q listening "$EDATA/out" 2>/dev/null && break; sleep 0.05; done
  EPORT=$(grep -o '[0-9]*$' "$EDATA/out")
}
engine_stop() {  # its folder stays until the end: deleting files on a disk mounted with
  # `discard` slows every fsync for seconds afterwards, which would land in the next step
  kill "$EPID"; wait "$EPID" 2>/dev/null || true
}
metric() { curl -s "http://127.0.0.1:$EPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
loadgen() { "$LOADGEN" --port "$EPORT" --data-dir "$EDATA" --engine-pid "$EPID" --json -q --threads "$LG_THREADS" "$@"; }

# --------------------------------------------------------------------------- servers
NPORT=$(free_port)
mkdir -p "$WORK/nginx"
sed -e "s|@WORK@|$WORK/nginx|g" -e "s|@PORT@|$NPORT|g" tools/bench/nginx.conf.in >"$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

PGPORT=$(free_port)
mkdir -p "$WORK/pg" "$WORK/pgsock"
chown postgres:postgres "$WORK/pg" "$WORK/pgsock"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w start -o \
  "-c listen_addresses=127.0.0.1 -p $PGPORT -k $WORK/pgsock -c fsync=on -c synchronous_commit=on -c max_connections=$((CONNS + 20)) -c shared_buffers=256MB -c autovacuum=off" >/dev/null
PSQL=(runuser -u postgres -- "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres)
"${PSQL[@]}" -f tools/bench/pg-setup.sql >/dev/null
cp tools/bench/pg-insert.sql "$WORK/pg-insert.sql"
chmod 644 "$WORK/pg-insert.sql"
sleep 0.5

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(uname -r)" >&2
for round in $(seq "$ROUNDS"); do
  echo "--- round $round of $ROUNDS" >&2

  # nginx: requests/s and CPU per request (master + workers)
  settle
  c0=$(cpu_of_tree "$NGINX_PID")
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$NPORT/")
  c1=$(cpu_of_tree "$NGINX_PID")
  rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  put nginx_rps "$rps"
  put nginx_cpu_us "$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
  echo "nginx: $rps requests/s" >&2

  # /start at saturation, then at half its rate
  settle
  engine_start
  j=$(loadgen --mix start --pop off -c "$CONNS" -d "$SECS" --warmup 2) || true
  echo "$j" >"$WORK/start-sat.$round.json"
  start_rps=$(jq .requests_per_s <<<"$j")
  put start_rps "$start_rps"
  put start_cpu_us "$(jq .engine.cpu_per_request_us <<<"$j")"
  put start_p99 "$(jq .endpoints.start.p99_ms <<<"$j")"
  put start_passed "$(jq .passed <<<"$j")"
  put call_kib "$(jq '.engine.rss_kib_per_active_call // "nan"' <<<"$j")"
  put start_events_per_sync "$(awk -v s="$(metric yna_commit_batch_events_sum)" -v c="$(metric yna_commit_batch_events_count)" 'BEGIN { printf "%.1f", c ? s / c : 0 }')"
  engine_stop
  echo "start: $start_rps requests/s" >&2
  settle
  engine_start
  idle_arg=(); [ "$round" -eq "$ROUNDS" ] && [ "$IDLE" -gt 0 ] && idle_arg=(--idle-sockets "$IDLE")
  j=$(loadgen --mix start --pop off -c "$CONNS" -d "$SECS" -r "$(awk -v r="$start_rps" 'BEGIN { print r / 2 }')" "${idle_arg[@]}") || true
  echo "$j" >"$WORK/start-half.$round.json"
  put start_half_notify_p50 "$(jq .notifications.latency.p50_ms <<<"$j")"
  put start_half_notify_p99 "$(jq .notifications.latency.p99_ms <<<"$j")"
  put start_half_p99 "$(jq .endpoints.start.p99_ms <<<"$j")"
  put start_half_cpu_us "$(jq .engine.cpu_per_request_us <<<"$j")"
  [ -n "${idle_arg[*]}" ] && put idle_kib "$(jq .idle_sockets.kib_per_socket <<<"$j")"
  engine_stop

  # /start under wrk: the same requests from a client as cheap as nginx's (no sockets,
  # invitations not checked): how much of the gap is the client's
  settle
  engine_start
  c0=$(cpu_of "$EPID")
  out=$(TOKEN=$("$BUILD/tools/yna-tool" --data-dir "$EDATA" token --msisdn 14250000001 --ttl 3600 --no-pop-key) \
        wrk -t2 -c"$CONNS" -d"${SECS}s" -s tools/bench/start.lua "http://127.0.0.1:$EPORT")
  c1=$(cpu_of "$EPID")
  WRK_START_RPS=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
  put wrk_start_rps "$WRK_START_RPS"
  put wrk_start_cpu_us "$(awk -v a="$c0" -v b="$c1" -v n="$(awk '/requests in/ { print $1 }' <<<"$out")" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')"
  put r_wrk_nginx "$(ratio "$(awk '/Requests\/sec/ { print $2 }' <<<"$out")" "$rps")"
  engine_stop

  # full flows, PoP per request, at saturation (client-bound) and at half its rate
  settle
  engine_start
  j=$(loadgen --mix full -c "$FULL_USERS" -d "$SECS" --warmup 2) || true
  echo "$j" >"$WORK/full-sat.$round.json"
  full_cps=$(jq .calls_per_s <<<"$j")
  put full_rps "$(jq .requests_per_s <<<"$j")"
  put full_cps "$full_cps"
  put full_cpu_us "$(jq .engine.cpu_per_request_us <<<"$j")"
  put full_client_cpu_us "$(jq .client.cpu_per_request_us <<<"$j")"
  put full_notify_p99 "$(jq .notifications.latency.p99_ms <<<"$j")"
  put full_passed "$(jq .passed <<<"$j")"
  engine_stop
  echo "full: $(jq .requests_per_s <<<"$j") requests/s, $full_cps calls/s" >&2
  settle
  engine_start
  j=$(loadgen --mix full -c "$FULL_USERS" -d "$SECS" -r "$(awk -v r="$full_cps" 'BEGIN { print r / 2 }')") || true
  echo "$j" >"$WORK/full-half.$round.json"
  put full_half_notify_p50 "$(jq .notifications.latency.p50_ms <<<"$j")"
  put full_half_notify_p99 "$(jq .notifications.latency.p99_ms <<<"$j")"
  put full_half_cpu_us "$(jq .engine.cpu_per_request_us <<<"$j")"
  put full_half_passed "$(jq .passed <<<"$j")"
  engine_stop

  # the log alone
  settle
  j=$("$BUILD/tools/yna-logbench" --seconds 5 --appenders "$CONNS" --batch 64 --dir "$WORK" --keep --json)
  for m in rocksdb-single rocksdb-batch rocksdb-threads engine; do
    put "log_$m" "$(jq ".\"$m\".events_per_s" <<<"$j")"
    put "log_${m}_eps" "$(jq ".\"$m\".events_per_sync" <<<"$j")"
    put "log_${m}_cpu" "$(jq ".\"$m\".cpu_us_per_event" <<<"$j")"
  done
  echo "log: $(jq -c 'map_values(.events_per_s)' <<<"$j")" >&2

  # PostgreSQL: one synchronous INSERT per transaction
  settle
  out=$(runuser -u postgres -- "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared \
        -c "$CONNS" -j 2 -T "$SECS" -f "$WORK/pg-insert.sql" postgres 2>&1)
  pg=$(awk '/^tps/ { print $3; exit }' <<<"$out")
  put pg_tps "$pg"
  echo "pg: $pg inserts/s" >&2
  "${PSQL[@]}" -c CHECKPOINT >/dev/null  # its dirty pages written now, not during the next step

  # ratios within the round
  put r_nginx "$(ratio "$start_rps" "$rps")"
  put r_pg "$(ratio "$start_rps" "$pg")"
  put r_log "$(ratio "$(jq .engine.events_per_s <<<"$j")" "$(jq '."rocksdb-single".events_per_s' <<<"$j")")"
  put r_log_batch "$(ratio "$(jq .engine.events_per_s <<<"$j")" "$(jq '."rocksdb-batch".events_per_s' <<<"$j")")"
  put r_wrk_pg "$(ratio "$WRK_START_RPS" "$pg")"
done

# --------------------------------------------------------------------------- once
micro=$("$BUILD/tools/yna-microbench" --rounds "$ROUNDS" --iterations 2000)
echo "$micro" >"$WORK/micro.txt"
for op in "bearer JWT verify (RS256), cold" "bearer JWT verify, cached" "PoP verify (RS256 + edts + jti)" \
          "decode CallStartRequest" "decide + apply (ringing)" "encode event" "decode event"; do
  key=$(echo "$op" | tr -c 'a-zA-Z0-9\n' '_')
  grep -F "  $op " "$WORK/micro.txt" | awk '{ print $(NF-1) }' >"$WORK/series.micro_$key"
done
TABLE_LINE=$(grep '^call table' "$WORK/micro.txt" | tail -1)
ssl=$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $4 * 1e6, $5 * 1e6 }')
RSA_SIGN_US=$(cut -d' ' -f1 <<<"$ssl"); RSA_VERIFY_US=$(cut -d' ' -f2 <<<"$ssl")

# --------------------------------------------------------------------------- report
NGINX_CPU=$(med nginx_cpu_us); FULL_CPU=$(med full_cpu_us)
CPU_RATIO=$(ratio "$FULL_CPU" "$(awk -v a="$NGINX_CPU" -v b="$RSA_VERIFY_US" 'BEGIN { print a + b }')")
pass() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { ok = (op == ">=" ? v >= g : v <= g); print (ok ? "met" : "**missed**") }'; }
DATE=$(date -u +%Y-%m-%dT%H:%MZ)
# The commit of the tree BUILD was built from (--build DIR of another worktree: its commit).
COMMIT=$(cd "$BUILD/.." && git rev-parse --short HEAD)$(cd "$BUILD/.." && git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo "+dirty")
MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), disk $(df -T "$ROOT" | awk 'NR == 2 { print $2 }') on $(df "$ROOT" | awk 'NR == 2 { print $1 }')"
{
  echo "### Run of $DATE (commit $COMMIT)"
  echo
  echo "Machine: $MACHINE. Command: \`sudo $CMDLINE\` ($ROUNDS rounds of $SECS s;"
  echo "median (min–max) of the rounds; ratios taken within each round, then their median)."
  echo
  echo "| goal | figure | target | |"
  echo "|---|---|---|---|"
  echo "| /start under wrk ÷ nginx static 200, -c$CONNS | $(fig r_wrk_nginx %.3f)× | ≥ 0.5× | $(pass "$(med r_wrk_nginx)" 0.5 ">=") |"
  echo "| /start with yna-loadgen and sockets ÷ nginx static 200, -c$CONNS | $(fig r_nginx %.3f)× | ≥ 0.2× | $(pass "$(med r_nginx)" 0.2 ">=") |"
  echo "| /start under wrk ÷ PostgreSQL sync INSERT, -c$CONNS | $(fig r_wrk_pg %.2f)× | ≥ 3× | $(pass "$(med r_wrk_pg)" 3 ">=") |"
  echo "| full flows with PoP: engine CPU per request ÷ (nginx CPU per request + one RSA-2048 verify) | $CPU_RATIO× ($FULL_CPU µs ÷ ($NGINX_CPU + $RSA_VERIFY_US) µs) | ≤ 2× | $(pass "$CPU_RATIO" 2 "<=") |"
  echo "| log alone: engine reactor + log, $CONNS appenders, events/s | $(fig log_engine %.0f) | ≥ 100k | $(pass "$(med log_engine)" 100000 ">=") |"
  echo "| … ÷ RocksDB batches of 64 per sync | $(fig r_log_batch %.2f)× | ≥ 0.5× | $(pass "$(med r_log_batch)" 0.5 ">=") |"
  echo "| PoP verification, median µs | $(fig "micro_PoP_verify__RS256___edts___jti_" %.1f) | ≤ 50 | $(pass "$(med "micro_PoP_verify__RS256___edts___jti_")" 50 "<=") |"
  echo "| notification latency p99 at half load, /start (ms) | $(fig start_half_notify_p99 %.2f) | ≤ 5 | $(pass "$(med start_half_notify_p99)" 5 "<=") |"
  echo "| notification latency p99 at half load, full flows (ms) | $(fig full_half_notify_p99 %.2f) | ≤ 5 | $(pass "$(med full_half_notify_p99)" 5 "<=") |"
  echo
  echo "| measured | median (min–max) |"
  echo "|---|---|"
  echo "| nginx static 200, wrk -t2 -c$CONNS, requests/s | $(fig nginx_rps %.0f) |"
  echo "| nginx CPU per request (µs, master + workers) | $(fig nginx_cpu_us %.2f) |"
  echo "| /start saturation, yna-loadgen -c$CONNS --pop off, requests/s | $(fig start_rps %.0f) |"
  echo "| … p99 latency (ms) / engine CPU per request (µs) / events per sync | $(fig start_p99 %.2f) / $(fig start_cpu_us %.1f) / $(fig start_events_per_sync %.1f) |"
  echo "| /start under wrk -t2 -c$CONNS (no sockets): requests/s; engine CPU per request (µs); ÷ nginx | $(fig wrk_start_rps %.0f); $(fig wrk_start_cpu_us %.1f); $(fig r_wrk_nginx %.3f)× |"
  echo "| /start at half load: p99 latency (ms) / notification p50, p99 (ms) / engine CPU per request (µs) | $(fig start_half_p99 %.2f) / $(fig start_half_notify_p50 %.2f), $(fig start_half_notify_p99 %.2f) / $(fig start_half_cpu_us %.1f) |"
  echo "| full flows with PoP, -c$FULL_USERS (client-bound): requests/s, calls/s | $(fig full_rps %.0f), $(fig full_cps %.0f) |"
  echo "| … engine CPU per request (µs) / loadgen CPU per request (µs) | $(fig full_cpu_us %.1f) / $(fig full_client_cpu_us %.1f) |"
  echo "| full flows at half load: notification p50, p99 (ms) / engine CPU per request (µs) | $(fig full_half_notify_p50 %.2f), $(fig full_half_notify_p99 %.2f) / $(fig full_half_cpu_us %.1f) |"
  echo "| PostgreSQL INSERT, synchronous commit, pgbench -c$CONNS, per s | $(fig pg_tps %.0f) |"
  echo "| /start with yna-loadgen ÷ PostgreSQL sync INSERT; log alone ÷ RocksDB one event per sync | $(fig r_pg %.2f)×; $(fig r_log %.1f)× |"
  echo "| RocksDB one event per sync: events/s; CPU µs per event | $(fig log_rocksdb-single %.0f); $(fig log_rocksdb-single_cpu %.1f) |"
  echo "| RocksDB batches of 64 per sync: events/s; CPU µs per event | $(fig log_rocksdb-batch %.0f); $(fig log_rocksdb-batch_cpu %.1f) |"
  echo "| RocksDB $CONNS threads, one synced Put each: events/s (events per sync); CPU µs per event | $(fig log_rocksdb-threads %.0f) ($(fig log_rocksdb-threads_eps %.1f)); $(fig log_rocksdb-threads_cpu %.1f) |"
  echo "| engine reactor + log, $CONNS appenders: events/s (events per sync); CPU µs per event | $(fig log_engine %.0f) ($(fig log_engine_eps %.1f)); $(fig log_engine_cpu %.1f) |"
  echo "| RSA-2048 sign / verify (openssl speed), µs | $RSA_SIGN_US / $RSA_VERIFY_US |"
  echo "| JWT verify cold / cached, µs | $(fig "micro_bearer_JWT_verify__RS256___cold" %.1f) / $(fig "micro_bearer_JWT_verify__cached" %.2f) |"
  echo "| decode CallStartRequest / decide+apply / encode event / decode event, µs | $(fig micro_decode_CallStartRequest %.2f) / $(fig micro_decide___apply__ringing_ %.2f) / $(fig micro_encode_event %.2f) / $(fig micro_decode_event %.2f) |"
  echo "| engine RSS growth per call left active (/start run; includes the log's memtables), KiB | $(fig call_kib %.2f) |"
  echo "| yna-microbench: ${TABLE_LINE:-call table: not measured} | |"
  [ -s "$WORK/series.idle_kib" ] && echo "| engine RSS per idle notification socket ($IDLE sockets), KiB | $(fig idle_kib %.2f) |"
  echo "| every loadgen run passed (no error, no missing notification) | start $(sort -u "$WORK/series.start_passed" | xargs), full $(sort -u "$WORK/series.full_passed" | xargs), full½ $(sort -u "$WORK/series.full_half_passed" | xargs) |"
  echo
  echo "Commands of each round (\$B = $BUILD; each engine on a fresh folder, fsync on:"
  echo "\`\$B/transport/yna-engine --listen 127.0.0.1:0 --data-dir D --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 --max-connections 30000 --max-calls-per-number 0 --max-ringing-per-number 0 --max-sockets-per-sub 0\`; loadgen prefix"
  echo "\`\$B/tools/yna-loadgen --port P --data-dir D --engine-pid PID --json -q --threads $LG_THREADS\`):"
  echo
  echo "    nginx   wrk -t2 -c$CONNS -d${SECS}s http://127.0.0.1:PORT/     # nginx with tools/bench/nginx.conf.in"
  echo "    start   yna-loadgen … --mix start --pop off -c $CONNS -d $SECS --warmup 2"
  echo "    start½  yna-loadgen … --mix start --pop off -c $CONNS -d $SECS -r <start calls/s ÷ 2>"
  echo "    wrk     TOKEN=\$(yna-tool --data-dir D token --msisdn 14250000001 --no-pop-key) wrk -t2 -c$CONNS -d${SECS}s -s tools/bench/start.lua http://127.0.0.1:P"
  echo "    full    yna-loadgen … --mix full -c $FULL_USERS -d $SECS --warmup 2"
  echo "    full½   yna-loadgen … --mix full -c $FULL_USERS -d $SECS -r <full calls/s ÷ 2>"
  echo "    pg      pgbench -n -M prepared -c $CONNS -j 2 -T $SECS -f tools/bench/pg-insert.sql   # tools/bench/pg-setup.sql, fsync=on, synchronous_commit=on"
  echo "    log     \$B/tools/yna-logbench --seconds 5 --appenders $CONNS --batch 64 --keep"
  echo "    once    \$B/tools/yna-microbench --rounds $ROUNDS --iterations 2000; openssl speed -seconds 3 rsa2048"
} >"$WORK/result.md"
cat "$WORK/result.md"
if [ "$UPDATE_MD" = 1 ]; then
  # BENCHMARKS.md keeps the two latest runs between its markers: this one first.
  awk -v new="$WORK/result.md" '
    /<!-- run-all:latest -->/ { print; while ((getline l < new) > 0) print l; skip = 1; next }
    /<!-- \/run-all:latest -->/ { print; print "<!-- run-all:previous -->"; printf "%s", latest; print "<!-- /run-all:previous -->"; skip = 2; next }
    skip == 1 { latest = latest $0 "\n"; next }
    skip == 2 && /<!-- run-all:previous -->/ { skip = 3; next }
    skip == 3 { if (/<!-- \/run-all:previous -->/) skip = 0; next }
    { print }' BENCHMARKS.md >"$WORK/BENCHMARKS.md" && cp "$WORK/BENCHMARKS.md" BENCHMARKS.md
  echo "BENCHMARKS.md updated" >&2
fi
