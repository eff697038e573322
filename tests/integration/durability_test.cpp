// Durability over the real binary (contract §6): an acknowledged transition survives a
// SIGKILL; the log's hash chain is intact afterwards; concurrent requests share log
// writes (group commit); every authenticated request on the eleven endpoints is exactly
// one event, and nothing else is.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "engine/types.hpp"
#include "storage/event_log.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

// One call driven by one worker: what was acknowledged (HTTP 200) and what was in
// flight when the engine died (sent, no answer).
struct call_record {
  party mo, mt;
  std::string id;                      // known once /start was acknowledged
  std::vector<std::string> acked;      // statuses acknowledged, in order
  std::optional<std::string> pending;  // status requested but not acknowledged
  std::string failure;                 // a non-200 answer (not expected)
};

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Opens the stopped engine's log with the storage library and verifies it.
std::unique_ptr<storage::event_log> open_log(const engine_process& eng) {
  auto r = storage::event_log::open_reader(eng.data_dir() / "log", eng.root() / "reader-scratch");
  INFO("open_reader(", (eng.data_dir() / "log").string(), "): ",
       r ? std::string("ok") : std::string(storage::to_string(r.error().code)) + " " + r.error().detail);
  REQUIRE(r.has_value());
  return std::move(*r);
}

void check_chain(const engine_process& eng, std::uint64_t at_least) {
  auto log = open_log(eng);
  const storage::verify_report rep = log->verify();
  INFO("verify: checked ", rep.checked, " last_seq ", rep.last_seq, " first_bad ", rep.first_bad, ": ", rep.problem);
  CHECK(rep.ok);
  CHECK(rep.checked == log->last_seq());
  CHECK(rep.checked >= at_least);

  if (auto tool = tool_path()) {
    const auto out = eng.root() / "yna-tool-verify.txt";
    const std::string cmd = tool->string() + " --data-dir " + eng.data_dir().string() + " verify > " + out.string() +
                            " 2>&1";
    const int rc = std::system(cmd.c_str());
    INFO(cmd, "\n", read_all(out));
    CHECK(rc == 0);
  } else {
    MESSAGE("yna-tool not built (set YNA_TOOL): the chain was verified with storage::event_log::verify only");
  }
}

}  // namespace

TEST_CASE("durability: every acknowledged transition survives SIGKILL; the hash chain is intact") {
  // Calls end and retire (contract §9) while others are started: the kill lands amid
  // retirements, and a retired call must read back from the log after the restart.
  engine_process eng({"--call-retention", "0.2"});
  constexpr int wanted = 100;
  constexpr int workers = 16;
  constexpr int slots = 400;  // workers keep starting calls until the kill

  std::vector<call_record> calls(slots);
  for (auto& r : calls) {
    r.mo = new_party(eng, "mo-dev");
    r.mt = new_party(eng, "mt-dev");
  }
  std::atomic<int> next{0};
  std::atomic<int> connected{0};
  std::atomic<bool> killed{false};
  std::mutex kill_mu;

  auto worker = [&] {
    http_client c(eng.port(), 20s);
    for (;;) {
      if (killed.load()) return;
      const int slot = next.fetch_add(1);
      if (slot >= slots) return;
      call_record& rec = calls[static_cast<std::size_t>(slot)];
      auto send = [&](const std::string& status, auto&& fn) {
        rec.pending = status;
        response r;
        try {
          r = fn();
        } catch (const std::exception&) {
          return false;  // no answer: the engine is gone; `pending` stays
        }
        if (r.status != 200) {
          rec.failure = status + ": " + std::to_string(r.status) + " " + r.body;
          rec.pending.reset();
          return false;
        }
        rec.pending.reset();
        rec.acked.push_back(status);
        if (status == "Initial") rec.id = json_str(r.body, "/callId").value_or("");
        return true;
      };
      if (!send("Initial", [&] {
            return c.post("/start", start_body(rec.mo.number, rec.mt.number, sdp("o")), rec.mo.auth());
          }))
        return;
      if (!send("Ringing", [&] { return c.post("/ringing/" + rec.id, "{}", rec.mt.auth()); })) return;
      if (!send("Connected",
                [&] { return c.post("/connected/" + rec.id, sdp_body(sdp("a")), rec.mt.auth()); }))
        return;
      if (slot % 2 == 0 && !send("Terminated", [&] { return c.del("/end/" + rec.id, rec.mo.auth()); })) return;
      if (connected.fetch_add(1) + 1 == wanted) {
        // Immediately after the 100th call's last 200: SIGKILL, other calls in flight.
        std::lock_guard lk(kill_mu);
        eng.kill9();
        killed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < workers; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  {
    std::lock_guard lk(kill_mu);
    if (eng.running()) eng.kill9();
  }

  std::size_t acked_events = 0, failures = 0;
  for (const auto& r : calls) {
    acked_events += r.acked.size();
    if (!r.failure.empty()) {
      ++failures;
      MESSAGE("unexpected answer while driving call ", r.id, ": ", r.failure);
    }
  }
  CHECK(failures == 0);
  REQUIRE(connected.load() >= wanted);
  MESSAGE(connected.load(), " calls connected, ", acked_events, " transitions acknowledged before SIGKILL");

  eng.start();  // same folder
  http_client c(eng.port());
  int exact = 0, checked = 0;
  for (const auto& r : calls) {
    if (r.id.empty()) continue;
    ++checked;
    auto g = c.get("/calls/" + r.id, r.mo.auth());
    CAPTURE(r.id);
    INFO("acknowledged: ", r.acked.back(), ", in flight: ", r.pending.value_or("-"), "; GET: ", g.status, " ",
         g.body);
    REQUIRE(g.status == 200);
    const std::string now = json_str(g.body, "/status").value_or("");
    // The last acknowledged status, or the one in flight when the engine died (it may
    // have become durable without its answer getting out).
    CHECK((now == r.acked.back() || (r.pending && now == *r.pending)));
    if (now == r.acked.back()) ++exact;
  }
  MESSAGE(checked, " calls checked after restart, ", exact, " exactly at their last acknowledged status");

  (void)eng.stop();
  if (eng.running()) eng.kill9();
  check_chain(eng, acked_events);

  // Every acknowledged transition is an accepted event of its call in the log, and an
  // ended call retired once at most (a retirement lost to the kill fires after restart).
  auto log = open_log(eng);
  std::size_t retired_calls = 0;
  for (const auto& r : calls) {
    if (r.id.empty()) continue;
    std::multiset<std::string> in_log;
    int retires = 0;
    for (auto seq : log->seqs_by_call(r.id)) {
      auto e = log->get(seq);
      REQUIRE(e.has_value());
      if (e->accepted() && e->status_after) in_log.insert(std::string(engine::to_string(*e->status_after)));
      if (e->accepted() && e->act == engine::action::retire) ++retires;
    }
    CAPTURE(r.id);
    CHECK(retires <= 1);
    if (retires == 1) ++retired_calls;
    for (const auto& s : r.acked) {
      CAPTURE(s);
      CHECK(in_log.count(s) >= 1);
    }
  }
  MESSAGE(retired_calls, " calls retired");
  CHECK(retired_calls > 0);
}

TEST_CASE("durability: concurrent requests share one log write (group commit)") {
  engine_process eng({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0",
                      "--max-calls-per-number", "0", "--max-ringing-per-number", "0"});  // each client sends far more than a device would, all to one callee
  constexpr int clients = 64;
  std::vector<party> mos;
  for (int i = 0; i < clients; ++i) mos.push_back(new_party(eng));
  const std::string callee = fresh_msisdn();
  std::atomic<long> ok{0}, bad{0};
  std::atomic<bool> go{false};
  const auto until = std::chrono::steady_clock::now() + 2500ms;
  std::vector<std::thread> pool;
  for (int i = 0; i < clients; ++i) {
    pool.emplace_back([&, i] {
      http_client c(eng.port());
      while (!go.load()) std::this_thread::yield();
      while (std::chrono::steady_clock::now() < until) {
        try {
          auto r = c.post("/start", start_body(mos[i].number, callee, sdp()), mos[i].auth());
          (r.status == 200 ? ok : bad)++;
        } catch (const std::exception&) {
          bad++;
        }
      }
    });
  }
  go = true;
  for (auto& t : pool) t.join();
  CHECK(bad.load() == 0);
  REQUIRE(ok.load() > 0);

  // The histogram is observed after the write; read it once it holds still.
  http_client c(eng.port());
  response m;
  std::optional<double> last;
  for (int same = 0, i = 0; same < 5 && i < 150; ++i) {
    m = c.get("/metrics");
    REQUIRE(m.status == 200);
    const auto v = metric_value(m.body, "yna_commit_batch_events_count");
    same = (v && last == v) ? same + 1 : 0;
    last = v;
    std::this_thread::sleep_for(20ms);
  }
  const double count = metric_value(m.body, "yna_commit_batch_events_count").value_or(-1);
  const double sum = metric_value(m.body, "yna_commit_batch_events_sum").value_or(-1);
  const double le1 = metric_value(m.body, "yna_commit_batch_events_bucket{le=\"1\"}").value_or(-1);
  const double inf = metric_value(m.body, "yna_commit_batch_events_bucket{le=\"+Inf\"}").value_or(-1);
  INFO(ok.load(), " starts acknowledged; batches: count ", count, ", sum ", sum, ", le=1 ", le1, ", +Inf ", inf);
  CHECK(sum >= static_cast<double>(ok.load()));  // every acknowledged start is one event written
  CHECK(sum > count);                            // more than one event per write on average
  CHECK(inf > le1);                              // some bucket above le="1" is not empty
  CHECK(inf == count);
  MESSAGE("group commit: ", ok.load(), " starts in ", count, " log writes (", sum / count, " events per write on average)");
}

TEST_CASE("events: one per authenticated request on the eleven endpoints, none for the rest") {
  engine_process eng;
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const party mt = new_party(eng, "mt-dev");
  const party stranger = new_party(eng, "eve-dev");
  int n = 0;
  auto txn = [&n] {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", ++n);
    return std::string(buf);
  };
  // txn id → what the event must say: accepted status, or rejection reasonCode.
  std::map<std::string, std::string> expect;
  auto expect_event = [&](const std::string& t, const std::string& outcome) { expect[t] = outcome; };

  std::string t = txn();
  auto s = c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"x-transaction-id", t}}));
  REQUIRE_200(s);
  expect_event(t, "Initial");
  const std::string id = json_str(s.body, "/callId").value_or("");

  struct req {
    const party* who;
    const char* method;
    std::string target;
    std::string body;
    int status;
    std::string outcome;
    header_list extra;
  };
  const req reqs[] = {
      {&mo, "POST", "/start", "{bad", 400, "INVALID_JSON", {}},
      {&stranger, "POST", "/start", start_body(mo.number, mt.number, sdp()), 403, "FORBIDDEN", {}},
      {&mo, "POST", "/ringing/" + id, "{}", 400, "WRONG_PARTY", {}},
      {&mt, "POST", "/ringing/" + id, "{}", 200, "Ringing", {}},
      {&mt, "POST", "/hold/" + id, sdp_body(sdp()), 400, "INVALID_STATE", {}},
      {&stranger, "POST", "/connected/" + id, sdp_body(sdp()), 403, "FORBIDDEN", {}},
      {&mt, "POST", "/connected/" + unknown_call_id(), sdp_body(sdp()), 404, "CALL_NOT_FOUND", {}},
      {&mt, "POST", "/connected/" + id, sdp_body(sdp("ans")), 200, "Connected", {}},
      {&mo, "DELETE", "/end/" + id, "", 200, "Terminated", {{"reason", "bye"}, {"conference", "conf-9"}}},
      {&mt, "DELETE", "/end/" + id, "", 200, "Terminated", {}},  // no-op, still an event
      {&mt, "POST", "/renegotiate/" + id, sdp_body(sdp()), 400, "CALL_ENDED", {}},
  };
  for (const auto& r : reqs) {
    t = txn();
    header_list h = r.who->auth(r.extra);
    h.emplace_back("x-transaction-id", t);
    auto res = c.request(r.method, r.target, r.body, h);
    INFO(r.method, " ", r.target, " -> ", res.status, " ", res.body);
    CHECK(res.status == r.status);
    expect_event(t, r.outcome);
  }
  // An invalid transaction id is still an authenticated request: one event (under a made-up id).
  CHECK(c.post("/ringing/" + id, "{}", mt.auth({{"x-transaction-id", "nope"}})).status == 400);
  const std::size_t events_expected = expect.size() + 1;

  // Not events: reads, unauthenticated requests, protocol errors, health and metrics.
  CHECK(c.get("/calls/" + id, mo.auth()).status == 200);
  CHECK(c.get("/calls/" + id, stranger.auth()).status == 403);
  CHECK(c.post("/start", start_body(mo.number, mt.number, sdp()), {}).status == 401);
  CHECK(c.post("/ringing/" + id, "{}", bearer("garbage")).status == 401);
  CHECK(c.post("/ringing/" + id, "{}", bearer(eng.token_at({mt.number}, 1, 2))).status == 401);
  CHECK(c.get("/no/such/path", mo.auth()).status == 404);
  CHECK(c.get("/start", mo.auth()).status == 405);
  CHECK(c.get("/healthz").status == 200);
  CHECK(c.get("/metrics").status == 200);

  (void)eng.stop();
  if (eng.running()) eng.kill9();
  check_chain(eng, events_expected);
  auto log = open_log(eng);
  CHECK(log->last_seq() == events_expected);
  for (const auto& [tx, outcome] : expect) {
    CAPTURE(tx);
    CAPTURE(outcome);
    const auto seqs = log->seqs_by_txn(tx);
    REQUIRE(seqs.size() == 1);
    const auto e = log->get(seqs.front());
    REQUIRE(e.has_value());
    CHECK(e->txn_id == tx);
    CHECK(!e->method.empty());
    CHECK(!e->path.empty());
    if (e->accepted()) {
      REQUIRE(e->status_after.has_value());
      CHECK(engine::to_string(*e->status_after) == outcome);
    } else {
      CHECK(schemas::to_string(e->rejected) == outcome);
    }
  }
  // The end event records reason and conference (contract §4, §6).
  bool found_end = false;
  for (auto seq : log->seqs_by_call(id)) {
    auto e = log->get(seq);
    if (e && e->act == engine::action::end && e->reason == std::optional<std::string>("bye")) {
      found_end = true;
      CHECK(e->conference == std::optional<std::string>("conf-9"));
      CHECK(e->msisdn == mo.number);
      CHECK(e->device_id == "mo-dev");
      CHECK(!e->noop);
    }
  }
  CHECK(found_end);
}
