// Timers on the real binary (contract §4 engine rows, §7), with sub-second flags: each
// expiry is seen by both parties over WebSocket and in GET /calls, is one engine-caused
// event in the log, and a deadline that passes while the engine is down fires once, at
// the restart. Each test runs its own engine so that only the timer under test is short
// (the others are minutes long): a slow machine can delay an expiry, never cause a wrong one.
#include <doctest/doctest.h>

#include <thread>

#include "engine/types.hpp"
#include "storage/event_log.hpp"
#include "tests/integration/api_fixture.hpp"
#include "tests/integration/frame_validation.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;

namespace {

constexpr auto frame_wait = std::chrono::seconds(20);

// The flags of one engine: every timer long but the ones a test sets.
std::vector<std::string> timer_flags(std::string invite = "300", std::string answer = "300",
                                     std::string offer = "300", std::string max_duration = "3000") {
  return {"--invite-timeout", invite, "--answer-timeout", answer, "--offer-timeout", offer,
          "--max-call-duration", max_duration};
}

// A party with its notification socket open; every frame goes to `cap`.
struct listener {
  party p;
  std::unique_ptr<ws_client> ws;
  std::vector<std::string> seen;
  capture& cap;

  listener(const engine_process& e, const std::string& device, capture& c) : p(new_party(e, device)), cap(c) {
    ws = ws_client::connect(e.port(), "/notifications", p.auth({{"X-Authorization", std::string(no_pop)}}));
  }
  // The next status notification with `status` (and `reason`, when given) for `call_id`,
  // or "" after frame_wait.
  std::string await_status(std::string_view status, std::string_view call_id,
                           std::optional<std::string> reason = std::nullopt) {
    const auto until = std::chrono::steady_clock::now() + frame_wait;
    while (std::chrono::steady_clock::now() < until) {
      auto f = ws->next(std::chrono::milliseconds(500));
      if (!f) continue;
      seen.push_back(*f);
      cap.frame(*f);
      const auto ref = json_str(*f, "/sessionStatusNotification/callObjectRef").value_or("");
      if (frame_status(*f) == status && ref.ends_with(call_id) &&
          (!reason || json_str(*f, "/sessionStatusNotification/reason") == reason))
        return *f;
    }
    return {};
  }
};

// A call between two listening parties; every REST response goes to `cap` too.
struct two_parties {
  capture cap;
  listener mo, mt;
  http_client c;
  std::string id;

  explicit two_parties(const engine_process& e) : mo(e, "mo-dev", cap), mt(e, "mt-dev", cap), c(e.port()) {
    auto r = c.post("/start", start_body(mo.p.number, mt.p.number, sdp("offer")), mo.p.auth());
    cap.response("POST", "/start", r);
    INFO("/start: ", r.status, " ", r.body);
    REQUIRE(r.status == 200);
    id = json_str(r.body, "/callId").value_or("");
    REQUIRE(!id.empty());
  }
  response post(const party& p, std::string_view ep, std::string_view body = "{}") {
    const std::string target = "/" + std::string(ep) + "/" + id;
    auto r = c.post(target, body, p.auth());
    cap.response("POST", target, r);
    return r;
  }
  std::string view() {
    auto r = c.get("/calls/" + id, mt.p.auth());
    cap.response("GET", "/calls/" + id, r);
    REQUIRE(r.status == 200);
    return r.body;
  }
  // Both parties are told `status` with `reason`, and GET /calls agrees.
  void both_see(std::string_view status, std::string_view reason) {
    for (listener* l : {&mo, &mt}) {
      const std::string f = l->await_status(status, id, std::string(reason));
      INFO("device ", (l == &mo ? "MO" : "MT"), " waiting for ", status, " (", reason, "); frames seen: ",
           l->seen.size());
      CHECK(!f.empty());
    }
  }
};

// Every engine-caused (timeout) event of `call_id` in the log of a stopped or running engine.
std::vector<engine::event> timeout_events(const engine_process& e, const std::string& call_id) {
  auto log = storage::event_log::open_reader(e.data_dir() / "log", e.root() / "reader");
  REQUIRE(log.has_value());
  std::vector<engine::event> out;
  for (auto seq : (*log)->seqs_by_call(call_id)) {
    auto ev = (*log)->get(seq);
    REQUIRE(ev.has_value());
    if (ev->act == engine::action::timeout) out.push_back(*ev);
  }
  return out;
}

}  // namespace

TEST_CASE("timers: no MT progress ends the call NotReachable for both parties") {
  engine_process e(timer_flags("0.3"));
  two_parties t(e);
  t.both_see("NotReachable", "invite-timeout");
  const std::string v = t.view();
  CHECK(json_str(v, "/status") == "NotReachable");
  CHECK(json_str(v, "/endReason") == "invite-timeout");
  CHECK(json_int(v, "/endedAt").has_value());
  // The call is over: an answer now is refused.
  CHECK(reason_code_of(t.post(t.mt.p, "connected", sdp_body(sdp("late"))).body) == "CALL_ENDED");
  auto evs = timeout_events(e, t.id);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].actor_role == engine::role::engine);
  CHECK(evs[0].timer == engine::timer_kind::invite);
  validate_captured(t.cap, e.root());
}

TEST_CASE("timers: ringing but never answered ends the call NoAnswer for both parties") {
  engine_process e(timer_flags("300", "0.6"));
  two_parties t(e);
  REQUIRE(t.post(t.mt.p, "ringing").status == 200);
  REQUIRE(!t.mo.await_status("Ringing", t.id).empty());
  t.both_see("NoAnswer", "answer-timeout");
  const std::string v = t.view();
  CHECK(json_str(v, "/status") == "NoAnswer");
  CHECK(json_str(v, "/endReason") == "answer-timeout");
  CHECK(timeout_events(e, t.id).size() == 1);
  validate_captured(t.cap, e.root());
}

TEST_CASE("timers: an unanswered hold is withdrawn for both parties, and a new offer is accepted afterwards") {
  engine_process e(timer_flags("300", "300", "0.4"));
  two_parties t(e);
  REQUIRE(t.post(t.mt.p, "connected", sdp_body(sdp("answer"))).status == 200);
  const std::string mo_sdp = json_str(t.view(), "/sdp/from").value_or("");
  REQUIRE(t.post(t.mo.p, "hold", sdp_body(sdp("hold-offer"))).status == 200);
  CHECK(json_str(t.view(), "/pendingOffer/kind") == "hold");
  t.both_see("Connected", "offer-timeout");
  const std::string v = t.view();
  CHECK(json_str(v, "/status") == "Connected");
  CHECK_FALSE(json_has(v, "/pendingOffer"));
  CHECK(json_str(v, "/sdp/from") == mo_sdp);  // the withdrawn offer's SDP is gone
  CHECK(reason_code_of(t.post(t.mt.p, "acceptHold", sdp_body(sdp("late"))).body) == "NO_OFFER_PENDING");
  // A new offer, from either side, is accepted.
  auto again = t.post(t.mt.p, "hold", sdp_body(sdp("second-offer")));
  INFO(again.body);
  CHECK(again.status == 200);
  auto evs = timeout_events(e, t.id);
  REQUIRE(!evs.empty());
  CHECK(evs[0].timer == engine::timer_kind::offer);
  CHECK(evs[0].status_after == engine::call_status::connected);
  validate_captured(t.cap, e.root());
}

TEST_CASE("timers: a call longer than --max-call-duration is Terminated, reason max-duration, for both parties") {
  engine_process e(timer_flags("300", "300", "300", "0.5"));
  two_parties t(e);
  REQUIRE(t.post(t.mt.p, "connected", sdp_body(sdp("answer"))).status == 200);
  t.both_see("Terminated", "max-duration");
  const std::string v = t.view();
  CHECK(json_str(v, "/status") == "Terminated");
  CHECK(json_str(v, "/endReason") == "max-duration");
  CHECK(timeout_events(e, t.id).size() == 1);
  validate_captured(t.cap, e.root());
}

TEST_CASE("timers: a deadline that passes while the engine is down fires at the restart, once") {
  engine_process e(timer_flags("1"));
  std::string id;
  party mo;
  {
    two_parties t(e);
    id = t.id;
    mo = t.mo.p;
    e.kill9();  // right after /start was acknowledged, well before the deadline
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the deadline passes while down
  CHECK(timeout_events(e, id).empty());
  e.start();
  http_client c(e.port());
  std::string status;
  for (int i = 0; i < 100 && status != "NotReachable"; ++i) {
    status = json_str(c.get("/calls/" + id, mo.auth()).body, "/status").value_or("");
    if (status != "NotReachable") std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(status == "NotReachable");
  // Resuming from the start sees exactly one NotReachable.
  auto ws = ws_client::connect(e.port(), "/notifications?since=0", mo.auth({{"X-Authorization", std::string(no_pop)}}));
  int ended = 0;
  for (const auto& f : ws->drain(std::chrono::milliseconds(1000))) ended += frame_status(f) == "NotReachable";
  CHECK(ended == 1);
  ws.reset();
  e.restart();  // and again: nothing left to fire
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  e.stop();
  auto evs = timeout_events(e, id);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].timer == engine::timer_kind::invite);
  CHECK(evs[0].time >= evs[0].timer_deadline);
}

TEST_CASE("timers: the flags take fractions and refuse nonsense") {
  for (const char* bad : {"-1", "abc", "1e12"}) {
    const run_result r = run_command(shell_quote(engine_path().string()) + " --invite-timeout " + bad +
                                     " --data-dir /nonexistent/x 2>&1");
    INFO("--invite-timeout ", bad, ": exit ", r.exit_code, " ", r.out);
    CHECK(r.exit_code != 0);
    CHECK(r.out.find("--invite-timeout") != std::string::npos);
  }
  const run_result help = run_command(shell_quote(engine_path().string()) + " --help");
  for (const char* flag : {"--invite-timeout", "--answer-timeout", "--offer-timeout", "--max-call-duration"})
    CHECK(help.out.find(flag) != std::string::npos);
}
