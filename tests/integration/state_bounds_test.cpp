// State over time (contract §9, issue 15), over the real binary: every table that grows
// with traffic is bounded and has a gauge, and the tables whose entries are kept only
// while something uses them fall back when the traffic stops (churn, then the gauge).
#include "tests/integration/raw_conn.hpp"

#include <doctest/doctest.h>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;
using namespace std::chrono_literals;

namespace {

// One series (or the sum of those with `labels`) of a fresh /metrics scrape; the scrape's
// own connection holds a slot of 127.0.0.1 while it is read.
double gauge_of(std::uint16_t port, std::string_view name, const std::vector<std::string>& labels = {}) {
  http_client c(port);
  const auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_sum(m.body, name, labels).value_or(-1);
}

}  // namespace

TEST_CASE("state bounds: client addresses, subjects and subscribed numbers are forgotten with their last socket") {
  engine_process eng({"--first-byte-timeout", "60"});
  for (int round = 0; round < 3; ++round) {
    CAPTURE(round);
    // 20 client addresses (127.0.0.2 to .21), each holding a silent connection...
    std::vector<std::unique_ptr<raw_conn>> conns;
    for (int i = 2; i < 22; ++i) conns.push_back(std::make_unique<raw_conn>(eng.port(), "127.0.0." + std::to_string(i)));
    // ...and 20 numbers, each its own subject, with a notification socket (from 127.0.0.1).
    std::vector<std::unique_ptr<ws_client>> sockets;
    for (int i = 0; i < 20; ++i) {
      const party p = new_party(eng);
      sockets.push_back(listen(eng, p));
    }
    // The accept loop and the reactor's subscribe may still be catching up: wait for them.
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_http_client_addresses") == 21; }));  // + 127.0.0.1
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_ws_subjects") == 20; }));
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_ws_subscribed_numbers") == 20; }));
    conns.clear();
    for (auto& s : sockets) s->close();
    sockets.clear();
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_http_client_addresses") == 1; }));  // the scrape's own
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_ws_subjects") == 0; }));
    CHECK(eventually([&] { return gauge_of(eng.port(), "yna_ws_subscribed_numbers") == 0; }));
  }
}

TEST_CASE("state bounds: cached tokens and rate-limiter buckets are forgotten once expired or refilled") {
  // Slow refills (a token comes back in 10 s) and tokens for 10 s: the ten requests and
  // the scrape below take far less, so every bucket and token is still held when counted.
  engine_process eng({"--token-leeway", "0", "--rate-limit", "0.1", "--rate-limit-sub", "0.1"});
  http_client c(eng.port());
  for (int i = 0; i < 10; ++i) {
    const std::string from = fresh_msisdn(), to = fresh_msisdn();
    // /start without PoP: no jti is remembered (PoP tokens live 120 s here; the PoP
    // cache's expiry is a unit test, tests/transport/pop_test.cpp).
    REQUIRE(c.post("/start", start_body(from, to, sdp()), bearer(eng.token({from}, "d", 10s))).status == 200);
  }
  {
    http_client m(eng.port());
    const auto text = m.get("/metrics").body;
    CHECK(metric_sum(text, "yna_tokens_cached", {}) == 10);
    CHECK(metric_sum(text, "yna_rate_limiter_buckets", {"key=\"token\""}) == 10);
    CHECK(metric_sum(text, "yna_rate_limiter_buckets", {"key=\"sub\""}) == 10);
  }
  // Then the traffic stops: the tokens expire, the buckets refill, and both are forgotten.
  CHECK(eventually([&] { return gauge_of(eng.port(), "yna_tokens_cached") == 0; }, 60s));
  CHECK(eventually([&] { return gauge_of(eng.port(), "yna_rate_limiter_buckets") == 0; }, 60s));
  CHECK(gauge_of(eng.port(), "yna_tokens_evicted") == 0);
}

TEST_CASE("state bounds: replays hold at most --max-replay-bytes; over it the socket closes 1013, and bytes come back") {
  engine_process eng({"--max-replay-bytes", "3000"});
  http_client c(eng.port());
  const party mt = new_party(eng, "mt-phone");
  for (int i = 0; i < 20; ++i) {  // 20 invitations for mt, still ringing
    const party mo = new_party(eng, "mo-phone");
    REQUIRE(c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth()).status == 200);
  }
  // Without since, the ringing invitations come from the call table (no replay).
  auto live = listen(eng, mt);
  const auto ringing = live->drain(800ms);
  REQUIRE(ringing.size() == 20);
  std::size_t total = 0;
  for (const auto& f : ringing) total += f.size();
  REQUIRE(total > 3000);  // all of them is over the budget, one is within it
  REQUIRE(ringing.back().size() < 3000);

  // since=0: every one of them, over the budget: refused, the socket closed 1013.
  auto all = listen(eng, mt, "?since=0");
  CHECK(eventually([&] { return all->closed(); }));
  CHECK(all->close_code() == 1013);
  CHECK(all->close_reason().find("--max-replay-bytes") != std::string::npos);
  CHECK(gauge_of(eng.port(), "yna_ws_replay_refused_total", {"why=\"bytes\""}) == 1);

  // The last one only: served; its bytes are given back once written.
  const std::uint64_t last = frame_seq(ringing.back());
  auto one = listen(eng, mt, "?since=" + std::to_string(last - 1));
  auto f = one->next(10s);
  REQUIRE(f.has_value());
  CHECK(frame_seq(*f) == last);
  CHECK(one->drain().empty());
  CHECK(eventually([&] { return gauge_of(eng.port(), "yna_ws_replay_bytes") == 0; }));
  CHECK(gauge_of(eng.port(), "yna_ws_replay_jobs") == 0);
  CHECK(gauge_of(eng.port(), "yna_ws_replay_refused_total") == 1);
}

// The log's RocksDB has one memory budget (--log-memory): block cache and memtables
// together, reported by part.
TEST_CASE("state bounds: --log-memory bounds the log's RocksDB, reported by yna_log_memory_bytes") {
  engine_process eng({"--log-memory", "16"});
  http_client c(eng.port());
  const party a = new_party(eng, "a"), b = new_party(eng, "b");
  for (int i = 0; i < 50; ++i) {  // some writes, so the memtables hold something
    auto r = c.post("/start", start_body(a.number, b.number, sdp("a")), a.auth());
    REQUIRE(r.status == 200);
    const auto id = json_str(r.body, "/callId").value_or("");
    REQUIRE(c.del("/end/" + id, a.auth()).status == 200);
  }
  const auto m = c.get("/metrics").body;
  CHECK(metric_value(m, "yna_log_memory_budget_bytes") == 16.0 * 1024 * 1024);
  const auto memtables = metric_value(m, "yna_log_memory_bytes{part=\"memtables\"}");
  const auto cache = metric_value(m, "yna_log_memory_bytes{part=\"block_cache\"}");
  REQUIRE(memtables.has_value());
  REQUIRE(cache.has_value());
  CHECK(*memtables > 0);
  CHECK(*memtables <= 16.0 * 1024 * 1024);
  CHECK(*cache >= *memtables * 0.5);  // the memtables are charged to the cache
  CHECK(metric_value(m, "yna_log_memory_bytes{part=\"table_readers\"}").has_value());

  const std::string bin = shell_quote(engine_path().string());
  const std::string data = shell_quote((eng.root() / "other-data").string());
  for (const char* bad : {"8", "70000", "lots"}) {
    CAPTURE(bad);
    const auto r = run_command("timeout 20 " + bin + " --data-dir " + data + " --log-memory " + shell_quote(bad) +
                               " 2>&1; echo \"exit=$?\"");
    CHECK(r.out.find("exit=2") != std::string::npos);
    CHECK(r.out.find("--log-memory") != std::string::npos);
  }
}

// --write-pipeline: log writes in flight at once (issue 19). 1 is the old one-at-a-time
// behaviour and must still serve; outside 1..16 the engine refuses to start.
TEST_CASE("state bounds: --write-pipeline takes 1..16; an engine with one write in flight serves") {
  engine_process eng({"--write-pipeline", "1"});
  http_client c(eng.port());
  const party a = new_party(eng, "a"), b = new_party(eng, "b");
  auto r = c.post("/start", start_body(a.number, b.number, sdp("a")), a.auth());
  REQUIRE(r.status == 200);
  CHECK(c.del("/end/" + json_str(r.body, "/callId").value_or(""), a.auth()).status == 200);

  const std::string bin = shell_quote(engine_path().string());
  const std::string data = shell_quote((eng.root() / "other-data").string());
  for (const char* bad : {"0", "17", "lots"}) {
    CAPTURE(bad);
    const auto out = run_command("timeout 20 " + bin + " --data-dir " + data + " --write-pipeline " + shell_quote(bad) +
                                 " 2>&1; echo \"exit=$?\"");
    CHECK(out.out.find("exit=2") != std::string::npos);
    CHECK(out.out.find("--write-pipeline") != std::string::npos);
  }
}
