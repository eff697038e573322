// The timers of contract §7: arming, disarming and expiry as pure decide/apply, then the
// reactor's deadline queue with a manual clock (races, restarts, failed writes).
#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "engine/notify.hpp"
#include "reactor_harness.hpp"

using namespace reactor_test;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;
// The call timers of §7 alone: no retirement (retire_test.cpp has it).
const timer_settings short_timers{1000, 3000, 500, 10000, -1};

// One call folded by hand through decide + apply, at times the test chooses.
struct call_sim {
  call_state c;
  timer_settings timers = short_timers;

  event run(command cmd, epoch_ms at) {
    event e = decide(c.call_id.empty() ? nullptr : &c, cmd, at, timers);
    e.seq = c.last_seq + 1;
    apply(c, e);
    return e;
  }
  event expire(timer_kind k, epoch_ms at) {
    command x;
    x.act = action::timeout;
    x.call_id = "C1";
    x.timer = k;
    return run(x, at);
  }
  event start() { return run(start_cmd("C1"), t0); }
  event connect(epoch_ms at) { return run(mt_cmd(action::connected, "C1"), at); }
};

command with_sdp(command c, std::string sdp_text) {
  c.sdp = std::move(sdp_text);
  return c;
}

std::uint64_t counter_value(registry& m, std::string_view name, std::string_view labels = {}) {
  return m.get_counter(name, "", labels).value();
}

}  // namespace

TEST_CASE("timers: /start arms invite and answer with absolute deadlines; 0 arms nothing") {
  call_sim s;
  const event e = s.start();
  REQUIRE(e.accepted());
  CHECK(e.arms[timer_kind::invite] == t0 + 1000);
  CHECK(e.arms[timer_kind::answer] == t0 + 3000);
  CHECK_FALSE(e.arms[timer_kind::offer]);
  CHECK_FALSE(e.arms[timer_kind::max_duration]);
  CHECK(s.c.timers == e.arms);

  call_sim off;
  off.timers = timer_settings{0, 0, 0, 0};
  CHECK_FALSE(off.start().arms.any());
  CHECK_FALSE(off.connect(t0 + 5).arms.any());
  CHECK_FALSE(off.c.timers.any());
}

TEST_CASE("timers: MT progress disarms invite; the answer disarms both and arms max duration") {
  call_sim s;
  s.start();
  REQUIRE(s.run(mt_cmd(action::ringing, "C1"), t0 + 10).accepted());
  CHECK_FALSE(s.c.timers[timer_kind::invite]);
  CHECK(s.c.timers[timer_kind::answer] == t0 + 3000);
  const event e = s.connect(t0 + 20);
  CHECK(e.arms[timer_kind::max_duration] == t0 + 20 + 10000);
  CHECK_FALSE(s.c.timers[timer_kind::answer]);
  CHECK(s.c.timers[timer_kind::max_duration] == t0 + 10020);
  // Ending the call disarms everything.
  REQUIRE(s.run(mo_cmd(action::end, "C1"), t0 + 30).accepted());
  CHECK_FALSE(s.c.timers.any());
}

TEST_CASE("timers: invite expiry ends the call NotReachable, caused by the engine") {
  call_sim s;
  s.start();
  CHECK(s.expire(timer_kind::invite, t0 + 999).rejected == reason_code::invalid_state);  // not yet
  CHECK(s.c.status == call_status::initial);
  const event e = s.expire(timer_kind::invite, t0 + 1000);
  REQUIRE(e.accepted());
  CHECK(e.status_after == call_status::not_reachable);
  CHECK(e.actor_role == role::engine);
  CHECK(e.sub.empty());
  CHECK(e.device_id.empty());
  CHECK(e.reason == "invite-timeout");
  CHECK(e.timer == timer_kind::invite);
  CHECK(e.timer_deadline == t0 + 1000);
  CHECK(e.from == "14250000001");
  CHECK(e.to == "14250000002");
  CHECK(s.c.status == call_status::not_reachable);
  CHECK(s.c.ended_at == t0 + 1000);
  CHECK(s.c.end_reason == "invite-timeout");
  CHECK_FALSE(s.c.timers.any());
  CHECK(s.connect(t0 + 1001).rejected == reason_code::call_ended);
  CHECK(s.expire(timer_kind::answer, t0 + 5000).rejected == reason_code::invalid_state);  // exactly once
}

TEST_CASE("timers: after MT progress only the answer timer is left, and it ends the call NoAnswer") {
  call_sim s;
  s.start();
  REQUIRE(s.run(mt_cmd(action::in_progress, "C1"), t0 + 5).accepted());
  CHECK(s.expire(timer_kind::invite, t0 + 2000).rejected == reason_code::invalid_state);
  const event e = s.expire(timer_kind::answer, t0 + 3000);
  REQUIRE(e.accepted());
  CHECK(e.status_after == call_status::no_answer);
  CHECK(e.reason == "answer-timeout");
  CHECK(s.c.status == call_status::no_answer);
}

TEST_CASE("timers: an unanswered offer is withdrawn, the offerer's SDP restored, and a new offer accepted") {
  call_sim s;
  s.start();
  s.connect(t0 + 10);
  const std::string before = s.c.mo_sdp;
  const event hold = s.run(with_sdp(mo_cmd(action::hold, "C1"), "v=0 hold"), t0 + 100);
  REQUIRE(hold.accepted());
  CHECK(hold.arms[timer_kind::offer] == t0 + 600);
  CHECK(s.c.mo_sdp == "v=0 hold");

  const event e = s.expire(timer_kind::offer, t0 + 600);
  REQUIRE(e.accepted());
  CHECK(e.status_before == call_status::connected);
  CHECK(e.status_after == call_status::connected);
  CHECK(e.reason == "offer-timeout");
  CHECK_FALSE(s.c.offer);
  CHECK_FALSE(s.c.timers[timer_kind::offer]);
  CHECK(s.c.timers[timer_kind::max_duration]);  // the call goes on
  CHECK(s.c.mo_sdp == before);
  CHECK(s.run(mt_cmd(action::accept_hold, "C1"), t0 + 601).rejected == reason_code::no_offer_pending);
  REQUIRE(s.run(mt_cmd(action::hold, "C1"), t0 + 700).accepted());
  REQUIRE(s.run(mo_cmd(action::accept_hold, "C1"), t0 + 800).accepted());
  CHECK_FALSE(s.c.timers[timer_kind::offer]);  // answered: disarmed
  CHECK(s.c.status == call_status::hold);

  // A resume offer that times out leaves the call on hold.
  REQUIRE(s.run(mt_cmd(action::resume, "C1"), t0 + 900).accepted());
  const event r = s.expire(timer_kind::offer, t0 + 1400);
  REQUIRE(r.accepted());
  CHECK(s.c.status == call_status::hold);
  CHECK(s.c.held_by == role::mt);
  // A renegotiation answered in time disarms its timer.
  REQUIRE(s.run(mo_cmd(action::renegotiate, "C1"), t0 + 1500).accepted());
  CHECK(s.c.timers[timer_kind::offer] == t0 + 2000);
  REQUIRE(s.run(mt_cmd(action::renegotiate, "C1"), t0 + 1600).accepted());
  CHECK_FALSE(s.c.timers[timer_kind::offer]);
  CHECK(s.expire(timer_kind::offer, t0 + 2000).rejected == reason_code::invalid_state);
}

TEST_CASE("timers: max duration ends a connected or held call Terminated, reason max-duration") {
  call_sim s;
  s.start();
  s.connect(t0 + 10);
  REQUIRE(s.run(mo_cmd(action::hold, "C1"), t0 + 20).accepted());
  REQUIRE(s.run(mt_cmd(action::accept_hold, "C1"), t0 + 30).accepted());
  CHECK(s.expire(timer_kind::max_duration, t0 + 10009).rejected == reason_code::invalid_state);
  const event e = s.expire(timer_kind::max_duration, t0 + 10010);
  REQUIRE(e.accepted());
  CHECK(e.status_before == call_status::hold);
  CHECK(e.status_after == call_status::terminated);
  CHECK(e.reason == "max-duration");
  CHECK(s.c.end_reason == "max-duration");
  CHECK_FALSE(s.c.held_by);
}

TEST_CASE("timers: due_timer names the earliest expired timer") {
  call_sim s;
  s.timers = timer_settings{1000, 500, 0, 0};
  s.start();
  CHECK_FALSE(due_timer(s.c, t0 + 499));
  CHECK(due_timer(s.c, t0 + 500) == timer_kind::answer);
  CHECK(due_timer(s.c, t0 + 5000) == timer_kind::answer);  // both passed: the earlier first
  s.expire(timer_kind::answer, t0 + 5000);
  CHECK_FALSE(due_timer(s.c, t0 + 5000));  // ended: the invite timer went with it
}

TEST_CASE("timers: deadlines and expiries survive the codec and the persisted call state") {
  call_sim s;
  s.start();
  s.connect(t0 + 10);
  s.run(with_sdp(mo_cmd(action::hold, "C1"), "v=0 hold"), t0 + 20);
  const event e = s.expire(timer_kind::offer, t0 + 520);
  auto back = decode_event(encode_event(e));
  REQUIRE(back.has_value());
  CHECK(back->act == action::timeout);
  CHECK(back->timer == timer_kind::offer);
  CHECK(back->timer_deadline == t0 + 520);
  CHECK(back->actor_role == role::engine);
  CHECK(back->reason == "offer-timeout");
  CHECK(encode_event(*back) == encode_event(e));
  auto start = decode_event(encode_event(call_sim{}.start()));
  REQUIRE(start.has_value());
  CHECK(start->arms[timer_kind::answer] == t0 + 3000);

  // A call with an offer pending: its deadline and the SDP to restore are in its state.
  call_sim p;
  p.start();
  p.connect(t0 + 10);
  p.run(with_sdp(mt_cmd(action::hold, "C1"), "v=0 mt hold"), t0 + 20);
  auto decoded = decode_call(encode_call(p.c));
  REQUIRE(decoded.has_value());
  const call_state* c = &*decoded;
  CHECK(c->timers == p.c.timers);
  REQUIRE(c->offer);
  CHECK(c->offer->prior_sdp == p.c.offer->prior_sdp);
  CHECK_FALSE(c->offer->prior_sdp.empty());
}

TEST_CASE("timers: an expiry notifies every device of both parties with its reason") {
  call_sim s;
  s.start();
  const event e = s.expire(timer_kind::invite, t0 + 1000);
  auto n = derive_notification(e);
  REQUIRE(n);
  CHECK(n->type == notification_type::status);
  CHECK(n->status == "NotReachable");
  CHECK(n->reason == "invite-timeout");
  CHECK(n->is_for("a", "dev-a", {"14250000001"}));
  CHECK(n->is_for("b", "dev-b", {"14250000002"}));
  CHECK_FALSE(n->is_for("x", "dev-x", {"19990000000"}));
  const std::string frame = encode_notification(*n, "");
  CHECK(frame.find(R"("reason":"invite-timeout")") != std::string::npos);
}

// ---- the reactor's deadline queue --------------------------------------------------

namespace {

reactor_options timer_opts() {
  reactor_options o;
  o.timers = short_timers;
  o.timer_retry_ms = 100;
  o.request_timeout_ms = 60'000;  // the manual clock jumps; requests must not time out
  return o;
}

// Folds events into a table, as recovery does.
call_table fold(const std::vector<event>& evs, call_table t = {}) {
  for (const auto& e : evs) t.apply(e);
  return t;
}

}  // namespace

TEST_CASE("reactor timers: an invite expiry is written once and ends the call") {
  harness h(timer_opts());
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  CHECK(h.r.armed_timers() == 2);
  h.clk.advance(1000);
  REQUIRE(h.wait_until([&] { return h.store.events().size() == 2; }));
  const event e = h.store.events()[1];
  CHECK(e.act == action::timeout);
  CHECK(e.status_after == call_status::not_reachable);
  CHECK(e.time == t0 + 1000);
  h.clk.advance(10'000);  // past the answer deadline too: that timer went with the call
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(h.store.events().size() == 2);
  CHECK(h.r.armed_timers() == 0);
  CHECK(counter_value(h.metrics, "yna_timer_expiries_total", "timer=\"invite\"") == 1);
  CHECK(h.r.active_calls() == 0);
}

TEST_CASE("reactor timers: an answer decided at the deadline loses to the timer, and the log says so") {
  harness h(timer_opts());
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  h.clk.set(t0 + 1000);  // the same tick as the deadline
  const reply r = h.call(mt_cmd(action::connected, "C1"));
  CHECK(r.code == reason_code::call_ended);
  const auto evs = h.store.events();
  REQUIRE(evs.size() == 3);
  CHECK(evs[1].act == action::timeout);
  CHECK(evs[1].status_after == call_status::not_reachable);
  CHECK(evs[2].act == action::connected);
  CHECK(evs[2].rejected == reason_code::call_ended);
}

TEST_CASE("reactor timers: an answer one ms before the deadline wins; the timer never fires") {
  harness h(timer_opts());
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  h.clk.set(t0 + 999);
  CHECK(h.call(mt_cmd(action::connected, "C1")).code == reason_code::none);
  h.clk.set(t0 + 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto evs = h.store.events();
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].status_after == call_status::connected);
  CHECK(h.r.armed_timers() == 1);  // max duration only
}

TEST_CASE("reactor timers: an answer in flight when the deadline passes wins; the expiry is dropped unwritten") {
  harness h(timer_opts());
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  h.store.pause();
  h.clk.set(t0 + 999);
  auto answer = h.submit(mt_cmd(action::connected, "C1"));
  REQUIRE(h.wait_until([&] { return h.store.has_waiting_append(); }));
  h.clk.set(t0 + 1500);
  // The invite expiry is decided now: it waits behind the answer being written.
  REQUIRE(h.wait_until([&] { return h.r.armed_timers() == 1; }));
  h.store.resume();
  CHECK(answer.get().code == reason_code::none);
  REQUIRE(h.wait_until([&] { return counter_value(h.metrics, "yna_timer_superseded_total") == 1; }));
  const auto evs = h.store.events();
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].status_after == call_status::connected);
}

TEST_CASE("reactor timers: a deadline that passed while the engine was down fires at once, exactly once") {
  std::vector<event> log;
  {
    harness h(timer_opts());
    h.clk.set(t0);
    h.start();
    REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
    log = h.store.events();
  }
  {
    harness h(timer_opts(), fold(log));
    h.clk.set(t0 + 60'000);  // restarted a minute later
    CHECK(h.r.armed_timers() == 2);
    h.start();
    REQUIRE(h.wait_until([&] { return h.store.events().size() == 1; }));
    const event e = h.store.events()[0];
    CHECK(e.seq == 2);
    CHECK(e.act == action::timeout);
    CHECK(e.timer == timer_kind::invite);  // the earlier of the two passed deadlines
    CHECK(e.timer_deadline == t0 + 1000);
    CHECK(e.time == t0 + 60'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    CHECK(h.store.events().size() == 1);
    log.push_back(e);
  }
  {
    harness h(timer_opts(), fold(log));  // and again: nothing left to fire
    h.clk.set(t0 + 120'000);
    CHECK(h.r.armed_timers() == 0);
    h.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    CHECK(h.store.events().empty());
  }
}

TEST_CASE("reactor timers: an expiry whose write fails is tried again") {
  harness h(timer_opts());
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  h.store.fail_next_append(store_error::io_error);
  h.clk.set(t0 + 1000);
  REQUIRE(h.wait_until([&] { return counter_value(h.metrics, "yna_log_write_failures_total") == 1; }));
  CHECK(h.store.events().size() == 1);
  h.clk.advance(100);  // the retry delay
  REQUIRE(h.wait_until([&] { return h.store.events().size() == 2; }));
  CHECK(h.store.events()[1].status_after == call_status::not_reachable);
}

// For each timer: the request that would disarm it, decided in the same tick as the
// deadline, loses (the expiry is written first, the request is decided after it); one
// ms earlier it wins and the timer never fires.
TEST_CASE("reactor timers: same-tick races for the answer, offer and max-duration timers") {
  struct race {
    const char* name;
    std::vector<command> setup;  // each step 10 ms apart from t0
    epoch_ms deadline;           // of the timer under test
    command request;             // the request racing it
    reason_code loser_code;      // what the request gets when the timer wins
    call_status timer_status;    // the call after the expiry
  };
  const std::vector<race> races{
      {"answer", {mt_cmd(action::ringing, "C1")}, t0 + 3000, mt_cmd(action::connected, "C1"),
       reason_code::call_ended, call_status::no_answer},
      {"offer", {mt_cmd(action::ringing, "C1"), mt_cmd(action::connected, "C1"), mo_cmd(action::hold, "C1")},
       t0 + 30 + 500, mt_cmd(action::accept_hold, "C1"), reason_code::no_offer_pending, call_status::connected},
      {"maxDuration", {mt_cmd(action::ringing, "C1"), mt_cmd(action::connected, "C1")}, t0 + 20 + 10000,
       mo_cmd(action::end, "C1"), reason_code::none, call_status::terminated},
  };
  for (const auto& rc : races) {
    for (const bool at_deadline : {true, false}) {
      CAPTURE(rc.name);
      CAPTURE(at_deadline);
      harness h(timer_opts());
      h.clk.set(t0);
      h.start();
      REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
      for (const auto& step : rc.setup) {
        h.clk.advance(10);
        REQUIRE(h.call(step).code == reason_code::none);
      }
      const std::size_t before = h.store.events().size();
      h.clk.set(at_deadline ? rc.deadline : rc.deadline - 1);
      const reply r = h.call(rc.request);
      const auto evs = h.store.events();
      if (at_deadline) {
        CHECK(r.code == rc.loser_code);
        REQUIRE(evs.size() == before + 2);
        CHECK(evs[before].act == action::timeout);
        CHECK(evs[before].status_after == rc.timer_status);
        CHECK(evs[before + 1].act == rc.request.act);
        // The loser is in the log after the expiry: rejected, or (end on an ended call) a noop.
        CHECK((evs[before + 1].rejected == rc.loser_code || evs[before + 1].noop));
      } else {
        CHECK(r.code == reason_code::none);
        REQUIRE(evs.size() == before + 1);
        CHECK(evs[before].act == rc.request.act);
        CHECK(evs[before].accepted());
        h.clk.set(rc.deadline + 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(120));
        CHECK(h.store.events().size() == before + 1);  // the disarmed timer never fires
      }
    }
  }
}
