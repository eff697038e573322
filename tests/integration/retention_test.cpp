// State over time on the real binary (contract §9): an ended call retires from memory
// after --call-retention and still answers, from the log, by every rule: before and after
// a restart, and after a SIGKILL. A retirement lost to a kill fires once after restart.
// A --call-retention outside 0..1e9 is refused at start-up.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "engine/types.hpp"
#include "storage/event_log.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

std::optional<std::string> opt(std::string s) { return s; }

double metric(http_client& c, std::string_view series) {
  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_value(m.body, series).value_or(-1);
}

// Polls /metrics until no ended call is left in memory (they all retired): 30 s at most.
void await_retired(http_client& c, double at_least) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (metric(c, "yna_calls_in_memory{state=\"ended\"}") == 0 && metric(c, "yna_calls_retired_total") >= at_least)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("ended calls still in memory after 30 s: ", metric(c, "yna_calls_in_memory{state=\"ended\"}"));
}

// Every rule for a retired call (the call ended with `view` as its last view).
void check_retired(const engine_process& eng, http_client& c, test_call t, const std::string& view,
                   const std::string& correlator) {
  t.c = &c;
  CAPTURE(t.id);
  auto g = t.get(t.mo);
  CHECK(g.status == 200);
  CHECK(g.body == view);
  CHECK(json_str(g.body, "/status") == opt("Terminated"));
  CHECK(t.get(t.mt).status == 200);
  const party stranger = new_party(eng, "stranger");
  CHECK_ERROR(c.get("/calls/" + t.id, stranger.auth()), 403, "FORBIDDEN");
  CHECK_ERROR(c.get("/calls/" + unknown_call_id(), t.mo.auth()), 404, "CALL_NOT_FOUND");
  CHECK_ERROR(t.post(t.mo, "hold", sdp_body(sdp("h"))), 400, "CALL_ENDED");
  CHECK_ERROR(t.post(t.mt, "ringing", "{}"), 400, "CALL_ENDED");
  CHECK_ERROR(c.del("/end/" + t.id, stranger.auth()), 403, "FORBIDDEN");
  auto end = t.end(t.mt);
  CHECK(end.status == 200);
  CHECK(t.view() == view);  // the /end changed nothing
  // The same from + clientCorrelator: that call, nothing created.
  auto again = c.post("/start", start_body(t.mo.number, t.mt.number, sdp("again"), correlator), t.mo.auth());
  CHECK(again.status == 200);
  CHECK(json_str(again.body, "/callId") == opt(t.id));
  CHECK(metric(c, "yna_calls_in_memory{state=\"ended\"}") == 0);  // nothing came back into memory
  CHECK(metric(c, "yna_calls_in_memory{state=\"live\"}") == 0);
}

int retire_events(const engine_process& eng, const std::string& id) {
  auto r = storage::event_log::open_reader(eng.data_dir() / "log", eng.root() / "reader-scratch");
  REQUIRE(r.has_value());
  int n = 0;
  for (auto seq : (*r)->seqs_by_call(id)) {
    auto e = (*r)->get(seq);
    REQUIRE(e.has_value());
    if (e->act == engine::action::retire && e->accepted()) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("retention: a retired call answers from the log by every rule, before and after a restart and a SIGKILL") {
  engine_process eng({"--call-retention", "0.2"});
  http_client c(eng.port());
  test_call t;
  t.c = &c;
  t.mo = new_party(eng, "mo-dev");
  t.mt = new_party(eng, "mt-dev");
  const std::string correlator = "corr-retire-1";
  auto s = c.post("/start", start_body(t.mo.number, t.mt.number, sdp("offer"), correlator), t.mo.auth());
  REQUIRE(s.status == 200);
  t.id = json_str(s.body, "/callId").value_or("");
  REQUIRE_200(t.post(t.mt, "connected", sdp_body(sdp("answer"))));
  REQUIRE_200(t.end(t.mo));
  const std::string view = t.view();  // in memory still, or already read back: the same
  REQUIRE(json_str(view, "/status") == opt("Terminated"));
  await_retired(c, 1);

  SUBCASE("while running") { check_retired(eng, c, t, view, correlator); }
  SUBCASE("after a restart") {
    REQUIRE(eng.restart().clean());
    c.set_port(eng.port());
    CHECK(metric(c, "yna_calls_in_memory{state=\"ended\"}") == 0);  // not loaded back
    check_retired(eng, c, t, view, correlator);
  }
  SUBCASE("after a SIGKILL") {
    eng.kill9();
    eng.start();
    c.set_port(eng.port());
    check_retired(eng, c, t, view, correlator);
  }
  (void)eng.stop();
  CHECK(retire_events(eng, t.id) == 1);
}

TEST_CASE("retention: a retirement lost to a SIGKILL fires once after the restart, at its recorded deadline") {
  engine_process eng({"--call-retention", "2"});
  http_client c(eng.port());
  test_call t = make_call(eng, c, "Connected");
  REQUIRE_200(t.end(t.mt));
  eng.kill9();  // well before the 2 s retention
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  eng.start();  // the deadline passed while down: it fires at once
  c.set_port(eng.port());
  await_retired(c, 1);
  CHECK(json_str(t.view(), "/status") == opt("Terminated"));
  REQUIRE(eng.restart().clean());
  c.set_port(eng.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(metric(c, "yna_calls_retired_total") == 0);  // nothing left to retire
  (void)eng.stop();
  CHECK(retire_events(eng, t.id) == 1);

  // The retire event carries the deadline the end armed: end time + 2000 ms.
  auto r = storage::event_log::open_reader(eng.data_dir() / "log", eng.root() / "reader-scratch");
  REQUIRE(r.has_value());
  std::int64_t end_time = 0, deadline = 0;
  for (auto seq : (*r)->seqs_by_call(t.id)) {
    auto e = (*r)->get(seq);
    if (e->act == engine::action::end && e->accepted()) {
      end_time = e->time;
      CHECK(e->arms[engine::timer_kind::retire] == e->time + 2000);
    }
    if (e->act == engine::action::retire) deadline = e->timer_deadline;
  }
  CHECK(end_time > 0);
  CHECK(deadline == end_time + 2000);
}

TEST_CASE("retention: --call-retention outside 0..1e9 is refused at start-up, naming the flag") {
  const auto dir = std::filesystem::temp_directory_path() / ("yna-retention-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string bin = shell_quote(engine_path().string());
  const std::string data = shell_quote((dir / "data").string());
  for (const char* bad : {"-1", "1e10", "soon"}) {
    CAPTURE(bad);
    const auto r = run_command("timeout 20 " + bin + " --data-dir " + data + " --call-retention " + shell_quote(bad) +
                               " 2>&1; echo \"exit=$?\"");
    CHECK(r.out.find("exit=2") != std::string::npos);
    CHECK(r.out.find("--call-retention") != std::string::npos);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
