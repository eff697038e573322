#!/usr/bin/env bash
# Crash test (issue 8): yna-loadgen drives full call flows against yna-engine, which is
# SIGKILLed at a random moment, then restarted on the same data folder; KILLS times.
# After every restart `yna-tool verify` must pass; at the end every transition a client
# saw acknowledged (HTTP 200 in the loadgen's --record) must be in the log as an
# accepted event with its x-transaction-id, and no (from, clientCorrelator) may have
# started two calls (clients retry /start with the same clientCorrelator). Ended calls
# retire after a second (--call-retention 1, contract §9), so kills land amid
# retirements and retried /starts of retired calls are answered from the log.
#
# Notifications (contract §5, "clients that resume with since miss nothing"): a
# WebSocket watcher (tests/crash/ws-watch.py) holds a token for every number the
# loadgen uses (fixed --number-prefix, -c USERS: 1<prefix>0000001 .. 2*USERS) on a
# device of its own, so it is owed every notification of those numbers. It connects
# with since=0 before the first kill and, after each kill, reconnects every 100 ms with
# since=<last sequenceNumber seen>. At the end (the engine still running) it is given
# time to catch up with the log as it is then (the cut: its last seq then), and the check
# requires: the sequenceNumbers it received strictly increase (none twice, none out of
# order across reconnects); every event up to the cut that notifies a watched number
# (accepted, not noop, with a status after; /start tells `to`, the rest `from` and
# `to`: engine::derive_notification and notification::is_for) was received, with its
# callId, kind and status; no frame came for anything else; and it reconnected after
# every kill. For a few calls whose frames span a reconnect (and one timer expiry) the
# frames are compared with `yna-tool timeline --json` (the engine's own
# derive_notification), which also checks the rule above. Before the engine starts,
# tests/crash/ws-watch-selftest.py runs the watcher against a scripted server (the
# fragments, pings, frame lengths and close frames the engine's traffic does not send).
#
#   tests/crash/crash-test.sh [BUILD] [KILLS]        e.g. tests/crash/crash-test.sh build 20
# (CRASH_KEEP=1 keeps the work folder: log, loadgen records, the watcher's lines.)
# Prints "crash: N kills survived, A acknowledged transitions checked, L lost, D duplicated"
# and "crash: watcher received W notifications over R reconnects, M missed, X duplicated",
# and exits 0 only when L = D = M = X = 0, every verify passed and nothing else above failed.
set -uo pipefail
BUILD=$(realpath "${1:-build}")
cd "$(dirname "$0")/../.."
KILLS=${2:-20}
ENGINE=$BUILD/transport/yna-engine
TOOL=$BUILD/tools/yna-tool
LOADGEN=$BUILD/tools/yna-loadgen
WORK=$(mktemp -d /tmp/yna-crash.XXXXXX)
DATA=$WORK/data
# The loadgen's numbers are 1<prefix><7 digits>, 1 .. 2*USERS (tools/loadgen/main.cpp);
# fixed, so that the watcher's token holds every one of them.
USERS=8
PREFIX=7310
WATCH_NUMBERS=$(for n in $(seq 1 $((2 * USERS))); do printf '1%s%07d\n' "$PREFIX" "$n"; done)
# CRASH_KEEP=1 keeps the folder (log, records, the watcher's lines) for a look afterwards.
trap 'kill -9 $(jobs -p) 2>/dev/null; wait 2>/dev/null; [ -n "${CRASH_KEEP:-}" ] && echo "crash: kept $WORK" || rm -rf "$WORK"' EXIT

# One port for every run, so that the loadgen's retries of /start (same clientCorrelator)
# reach the restarted engine.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_engine() {
  : >"$WORK/engine.out"
  "$ENGINE" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --rate-limit 0 --rate-limit-sub 0 --max-connections-per-ip 0 \
    --call-retention 1 >"$WORK/engine.out" 2>>"$WORK/engine.err" &
  ENGINE_PID=$!
  for _ in $(seq 1 400); do
    grep -q 'listening on' "$WORK/engine.out" 2>/dev/null && return 0
    kill -0 "$ENGINE_PID" 2>/dev/null || break  # it exited (or could not be executed)
    sleep 0.05
  done
  echo "crash: the engine did not start"; tail -5 "$WORK/engine.err"; exit 1
}

# The watcher's own protocol handling first (fragments, pings, lengths, close, since):
# the engine's traffic here does not exercise all of it.
python3 tests/crash/ws-watch-selftest.py || exit 1

verify_failures=0
start_engine

# The watcher: its own sub and device_id (never the acting device), every loadgen number.
# shellcheck disable=SC2046
"$TOOL" --data-dir "$DATA" token $(printf -- '--msisdn %s ' $WATCH_NUMBERS) --sub crash-watcher \
  --device-id crash-watch --no-pop-key --ttl 86400 >"$WORK/watch.token" || { echo "crash: cannot mint the watcher's token"; exit 1; }
python3 tests/crash/ws-watch.py --port "$PORT" --token-file "$WORK/watch.token" --out "$WORK/watch.jsonl" --frames \
  2>"$WORK/watch.err" &
WATCH_PID=$!
for _ in $(seq 1 200); do
  grep -q '"connect":1,' "$WORK/watch.jsonl" 2>/dev/null && break
  sleep 0.05
done
grep -q '"connect":1,' "$WORK/watch.jsonl" 2>/dev/null || { echo "crash: the watcher did not connect"; cat "$WORK/watch.err"; exit 1; }
for i in $(seq 1 "$KILLS"); do
  "$LOADGEN" --port "$PORT" --data-dir "$DATA" -c "$USERS" --number-prefix "$PREFIX" --duration 30 --mix full:6,answer:2,cancel:1,busy:1 \
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
# Let the watcher catch up with the log as it is now (timers may still add events): the
# cut is the last seq of this export; wait (at most 20 s) until the watcher has seen the
# last notification owed to it up to the cut, then stop it. The check below counts a
# miss for anything owed up to the cut that it did not get.
"$TOOL" --data-dir "$DATA" export >"$WORK/log-cut.jsonl" || { echo "crash: export failed"; exit 1; }
python3 - "$WORK" $WATCH_NUMBERS <<'PY'
import json, sys, time
work, watched = sys.argv[1], set(sys.argv[2:])
target = 0
for line in open(f"{work}/log-cut.jsonl"):
    e = json.loads(line)
    out, p = e.get("outcome", {}), e.get("payload", {})
    if out.get("accepted") and not out.get("noop") and "after" in out and e.get("type") != "retire":
        if p.get("to") in watched or (e.get("type") != "start" and p.get("from") in watched):
            target = e["seq"]
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    seen = 0
    with open(f"{work}/watch.jsonl", "rb") as f:  # its last lines are enough to wait on
        f.seek(max(0, f.seek(0, 2) - (1 << 18)))
        for line in f.read().splitlines()[1:]:
            try:
                seen = max(seen, json.loads(line).get("seq", 0))
            except ValueError:
                pass
    if seen >= target:
        break
    time.sleep(0.2)
PY
kill -TERM "$WATCH_PID"; wait "$WATCH_PID"; watch_rc=$?
kill "$ENGINE_PID"; wait "$ENGINE_PID" 2>/dev/null
"$TOOL" --data-dir "$DATA" export >"$WORK/log.jsonl" || { echo "crash: export failed"; exit 1; }

python3 - "$WORK" "$KILLS" "$verify_failures" "$TOOL" "$DATA" "$watch_rc" $WATCH_NUMBERS <<'PY'
import glob, json, subprocess, sys
work, kills, verify_failures = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tool, data, watch_rc, watched = sys.argv[4], sys.argv[5], int(sys.argv[6]), set(sys.argv[7:])
accepted_txn = set()
starts = {}  # (from, clientCorrelator) -> call ids created
log = {}  # seq -> record
for line in open(f"{work}/log.jsonl"):
    e = json.loads(line)
    log[e["seq"]] = e
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

# --- the watcher ---------------------------------------------------------------------
WATCH_SUB, WATCH_DEVICE = "crash-watcher", "crash-watch"

def owed(e):
    """(kind, status) of the frame the watcher is owed for event e, None if none:
    engine::derive_notification (accepted, not noop, a status after, not a retirement,
    which tells nobody) and notification::is_for (/start: `to`; the rest: `from` and `to`;
    not the causing device)."""
    out, p, a = e.get("outcome", {}), e.get("payload", {}), e.get("actor", {})
    if not out.get("accepted") or out.get("noop") or "after" not in out or e["type"] == "retire":
        return None
    # Contract §10: an event that gave way to the engine's routing tells nobody, nor does
    # a noAnswer expiry; the routing's own events tell the parties aware of the call.
    if p.get("routed") or e.get("timer", {}).get("kind") == "noAnswer":
        return None
    mt_told = not p.get("mtUnaware")
    if e["type"] in ("start", "divert"):
        parties = [p.get("to")]
    elif e["type"] == "forward":
        parties = [p.get("from")] + ([p.get("diversion")] if mt_told else [])
    elif e["type"] in ("waiting", "release"):
        parties = [p.get("from")] + ([p.get("to")] if mt_told else [])
    else:
        parties = [p.get("from"), p.get("to")]
    if not watched.intersection(parties):
        return None
    if a.get("device") and a.get("device") == WATCH_DEVICE and a.get("sub") == WATCH_SUB:
        return None
    if e["type"] in ("start", "divert"):
        return ("invitation", None)
    if e["type"] == "upgrade":  # an upgrade's step (contract §10) is told as its own status
        return ("status", p.get("step"))
    return ("status", {"hold": "Hold", "resume": "Resume", "upgradeToMeeting": "UpgradeToMeetingInitiated"}.get(
        e["type"], out["after"]))

expected = {}  # seq -> (kind, status, callId) of the frame owed to the watcher
for seq, e in log.items():
    if (o := owed(e)) is not None:
        expected[seq] = (*o, e["callId"])
cut = 0
for line in open(f"{work}/log-cut.jsonl"):
    cut = max(cut, json.loads(line)["seq"])
frames, bad, connections, whys, connected_at = [], [], 0, {}, {}
for line in open(f"{work}/watch.jsonl"):
    try:
        r = json.loads(line)
    except ValueError:
        bad.append(line.strip()); continue
    if "seq" in r:
        frames.append(r)
    elif "bad" in r:
        bad.append(line.strip())
    elif "connect" in r:
        connections = max(connections, r["connect"])
        connected_at[r["connect"]] = r["t"]
    elif "disconnect" in r:
        whys[r["why"]] = whys.get(r["why"], 0) + 1
received, dups, disorder, wrong = set(), 0, 0, 0
high = 0
for r in frames:
    seq = r["seq"]
    if seq in received:
        dups += 1
        if dups <= 5: print("crash: watcher received twice:", json.dumps({k: r[k] for k in ("seq", "type", "callId", "conn")}))
    elif seq < high:
        disorder += 1
        if disorder <= 5: print(f"crash: watcher received {seq} after {high}")
    received.add(seq)
    high = max(high, seq)
    want = expected.get(seq)
    if want is not None and want != (r["type"], r.get("status"), r["callId"]):
        wrong += 1
        if wrong <= 5: print(f"crash: watcher frame {seq} is {(r['type'], r.get('status'), r['callId'])}, the log says {want}")
missed = sorted(s for s in expected if s <= cut and s not in received)
for s in missed[:5]:
    print(f"crash: watcher missed {s}: {log[s]['type']} of {log[s]['callId']}")
unexpected = sorted(s for s in received if s not in expected)
for s in unexpected[:5]:
    print(f"crash: watcher got {s}, which notifies no watched number:", json.dumps(log.get(s, "not in the log"))[:300])
reconnects = max(connections - 1, 0)
# Frames of events older than the connection they came on: replayed from the log (since=).
replayed = sum(1 for r in frames if r["conn"] > 1 and r["seq"] in log and log[r["seq"]]["time"] < connected_at[r["conn"]])
print(f"crash: watcher: {connections} connections, {len(frames)} frames ({replayed} replayed after a reconnect), cut at seq {cut} "
      f"({sum(1 for s in expected if s <= cut)} notifications owed up to it); disconnects: "
      + ", ".join(f"{w} x{n}" for w, n in sorted(whys.items())))

# A few calls whose frames span a reconnect, and a timer expiry: compare the rule above and
# the frames received with `yna-tool timeline --json` (engine::derive_notification).
by_call = {}
for r in frames:
    by_call.setdefault(r["callId"], []).append(r)
sample = [e["callId"] for s, e in sorted(log.items()) if e["type"] == "timeout" and s in expected][:1]
sample += [c for c, rs in by_call.items() if len({r["conn"] for r in rs}) > 1][:5]
for k in range(2, connections + 1):  # the first frame after each reconnect
    sample += [r["callId"] for r in frames if r["conn"] == k][:1]
sample = list(dict.fromkeys(sample))[:10]
compared = differ = 0
for cid in sample:
    tl = subprocess.run([tool, "--data-dir", data, "timeline", cid, "--json"], capture_output=True, text=True)
    if tl.returncode != 0:
        differ += 1; print(f"crash: yna-tool timeline {cid} failed: {tl.stderr.strip()[:200]}"); continue
    tl_frames = {}
    for ev in json.loads(tl.stdout)["events"]:
        for n in ev.get("notifications", []):
            ex = n.get("except") or {}
            if not watched.intersection(n.get("recipients", [])):
                continue
            if ex.get("device") and ex.get("device") == WATCH_DEVICE and ex.get("sub") == WATCH_SUB:
                continue
            tl_frames[ev["record"]["seq"]] = n["frame"]
    mine = {s for s, v in expected.items() if v[2] == cid}
    if set(tl_frames) != mine:
        differ += 1
        print(f"crash: call {cid}: the check expects {sorted(mine)}, timeline says {sorted(tl_frames)}")
    for r in by_call.get(cid, []):
        compared += 1
        if r.get("frame") != tl_frames.get(r["seq"]):
            differ += 1
            if differ <= 5: print(f"crash: frame {r['seq']} differs from timeline's: {json.dumps(r.get('frame'))[:300]}")
timer_calls = len({e["callId"] for e in log.values() if e["type"] == "timeout"}.intersection(sample))
print(f"crash: {compared} watcher frames of {len(sample)} calls ({timer_calls} with a timer expiry) compared with "
      f"yna-tool timeline, {differ} differ")
problems = []
if disorder: problems.append(f"{disorder} out of order")
if unexpected: problems.append(f"{len(unexpected)} unexpected")
if wrong: problems.append(f"{wrong} wrong")
if bad: problems.append(f"{len(bad)} unreadable")
if differ: problems.append(f"{differ} differ from timeline")
if reconnects < kills: problems.append(f"only {reconnects} reconnects for {kills} kills")
if watch_rc != 0: problems.append(f"watcher exit code {watch_rc}")
print(f"crash: watcher received {len(frames)} notifications over {reconnects} reconnects, {len(missed)} missed, "
      f"{dups} duplicated" + "".join(", " + p for p in problems))
watch_ok = not missed and not dups and not problems and frames
print(f"crash: {kills} kills survived, {acked} acknowledged transitions checked, {lost} lost, {dup} duplicated"
      f"{'' if verify_failures == 0 else f', {verify_failures} verify failures'}")
sys.exit(0 if lost == 0 and dup == 0 and verify_failures == 0 and acked > 0 and watch_ok else 1)
PY
