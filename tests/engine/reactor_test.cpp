#include "engine/reactor.hpp"

#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "reactor_harness.hpp"

using namespace reactor_test;


TEST_CASE("reactor: a start is acknowledged only after it is in the log") {
  harness h;
  h.start();
  reply rep = h.call(start_cmd("C1"));
  CHECK(rep.code == reason_code::none);
  CHECK(render_success(rep, "").find("\"callId\":\"C1\"") != std::string::npos);
  auto evs = h.store.events();
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].seq == 1);
  CHECK(evs[0].prev_hash == std::string(64, '0'));
  CHECK(h.r.committed_seq() == 1);
}

TEST_CASE("reactor: commands queued together share one write (group commit)") {
  harness h;
  std::vector<std::future<reply>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(h.submit(start_cmd("C" + std::to_string(i))));
  h.start();
  for (auto& f : fs) CHECK(f.get().code == reason_code::none);
  CHECK(h.store.events().size() == 50);
  CHECK(h.store.appends() < 50);
  CHECK(h.r.active_calls() == 50);
}

TEST_CASE("reactor: a failed write acknowledges nothing and the next one works") {
  harness h;
  h.start();
  h.store.fail_next_append(store_error::io_error);
  reply bad = h.call(start_cmd("C1"));
  CHECK(bad.code == reason_code::internal_error);
  CHECK(h.store.events().empty());
  reply full_after = h.call(start_cmd("C2"));
  CHECK(full_after.code == reason_code::none);
  auto evs = h.store.events();
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].seq == 1);  // no gap left by the failed write
  CHECK(h.call(mt_cmd(action::ringing, "C1")).code == reason_code::call_not_found);
  h.store.fail_next_append(store_error::no_space);
  CHECK(h.call(mt_cmd(action::ringing, "C2")).code == reason_code::service_unavailable);
  CHECK(h.call(mt_cmd(action::ringing, "C2")).code == reason_code::none);
}

TEST_CASE("reactor: two answers racing on one call: exactly one wins") {
  harness h;
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  auto a = h.submit(mt_cmd(action::connected, "C1"));
  auto b = h.submit(mt_cmd(action::connected, "C1"));
  const auto ra = a.get().code, rb = b.get().code;
  CHECK(((ra == reason_code::none) != (rb == reason_code::none)));
  CHECK((ra == reason_code::invalid_state || rb == reason_code::invalid_state));
  auto evs = h.store.events();
  REQUIRE(evs.size() == 3);
  CHECK(evs[1].accepted());
  CHECK(evs[2].rejected == reason_code::invalid_state);
}

TEST_CASE("reactor: repeated /start with the same clientCorrelator creates one call") {
  harness h;
  auto a = h.submit(start_cmd("C1", "corr-1"));
  auto b = h.submit(start_cmd("C2", "corr-1"));
  h.start();
  const reply ra = a.get(), rb = b.get();
  CHECK(ra.code == reason_code::none);
  CHECK(rb.code == reason_code::none);
  CHECK(render_success(ra, "") == render_success(rb, ""));
  CHECK(render_success(ra, "").find("\"callId\":\"C1\"") != std::string::npos);
  CHECK(h.r.active_calls() == 1);
  auto evs = h.store.events();
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].noop);
}

TEST_CASE("reactor: queries answer parties only") {
  harness h;
  h.start();
  REQUIRE(h.call(start_cmd("C1")).code == reason_code::none);
  auto ask = [&](std::string id, actor who) {
    auto p = std::make_shared<std::promise<reply>>();
    auto f = p->get_future();
    REQUIRE(h.r.query(std::move(id), std::move(who), [p](reply r) { p->set_value(std::move(r)); }));
    return f.get();
  };
  reply ok = ask("C1", actor{"b", "d", {"14250000002"}, false, ""});
  CHECK(ok.code == reason_code::none);
  CHECK(render_success(ok, "").find("\"status\":\"Initial\"") != std::string::npos);
  CHECK(ask("C1", actor{"x", "d", {"19990000000"}, false, ""}).code == reason_code::forbidden);
  CHECK(ask("NOPE", actor{"b", "d", {"14250000002"}, false, ""}).code == reason_code::call_not_found);
}

TEST_CASE("reactor: bounded pending requests") {
  reactor_options o;
  o.max_pending = 3;
  harness h(o);
  std::vector<std::future<reply>> fs;
  for (int i = 0; i < 3; ++i) fs.push_back(h.submit(start_cmd("C" + std::to_string(i))));
  CHECK_FALSE(h.r.submit(start_cmd("C9"), [](reply) {}));
  h.start();
  for (auto& f : fs) CHECK(f.get().code == reason_code::none);
  CHECK(h.r.pending() == 0);
}

TEST_CASE("reactor: requests older than the timeout get 408 and are not stored") {
  reactor_options o;
  o.request_timeout_ms = 1000;
  harness h(o);
  auto f = h.submit(start_cmd("C1"));
  h.clk.advance(5000);
  h.start();
  CHECK(f.get().code == reason_code::request_timeout);
  CHECK(h.store.events().empty());
}

TEST_CASE("reactor: a wall-clock step does not time out waiting requests (their deadline is monotonic)") {
  reactor_options o;
  o.request_timeout_ms = 1000;
  harness h(o);
  auto f = h.submit(start_cmd("C1"));
  h.clk.step_wall(60'000);  // NTP steps the wall clock a minute ahead: no time has passed
  h.start();
  CHECK(f.get().code == reason_code::none);
  REQUIRE(h.store.events().size() == 1);
  CHECK(h.store.events()[0].time == h.clk.now());  // the event carries the wall time
  auto g = h.submit(start_cmd("C2"));
  h.clk.step_wall(-120'000);  // and back two minutes: the request still waits its whole timeout
  CHECK(g.get().code == reason_code::none);
}

TEST_CASE("reactor: a request parked behind a slow write outlives a wall-clock step, not its monotonic timeout") {
  reactor_options o;
  o.request_timeout_ms = 1000;
  harness h(o);  // driven by poll_once on this thread
  auto settle = [&] { for (int i = 0; i < 4; ++i) h.r.poll_once(); };
  auto started = h.submit(start_cmd("C1"));
  settle();
  REQUIRE(started.get().code == reason_code::none);

  h.store.pause();  // the next write stays in flight
  auto ringing = h.submit(mt_cmd(action::ringing, "C1"));
  h.r.poll_once();
  REQUIRE(h.store.has_waiting_append());
  auto parked = h.submit(mt_cmd(action::connected, "C1"));  // waits for C1's event in flight
  h.r.poll_once();
  h.clk.step_wall(10'000);  // the wall clock jumps 10 s: no time has passed
  h.clk.advance(60);        // enough for the reactor's sweep of stale requests to run
  h.r.poll_once();
  h.store.resume();
  settle();
  CHECK(ringing.get().code == reason_code::none);
  CHECK(parked.get().code == reason_code::none);  // decided: the step was no wait

  h.store.pause();
  auto end = h.submit(mo_cmd(action::end, "C1"));
  h.r.poll_once();
  REQUIRE(h.store.has_waiting_append());
  auto late = h.submit(mo_cmd(action::end, "C1"));
  h.r.poll_once();
  h.clk.advance(1001);  // time passes: the parked request's timeout is over
  h.r.poll_once();
  h.store.resume();
  settle();
  CHECK(end.get().code == reason_code::none);
  CHECK(late.get().code == reason_code::request_timeout);
}

TEST_CASE("reactor: each batch persists the states of the calls it changed: the fold of the log, call by call") {
  harness h;
  h.start();
  for (int i = 0; i < 5; ++i) REQUIRE(h.call(start_cmd("C" + std::to_string(i))).code == reason_code::none);
  REQUIRE(h.call(mt_cmd(action::ringing, "C1")).code == reason_code::none);
  REQUIRE(h.call(mt_cmd(action::connected, "C1")).code == reason_code::none);
  REQUIRE(h.call(mo_cmd(action::end, "C2")).code == reason_code::none);
  CHECK(h.call(mo_cmd(action::hold, "C3")).code == reason_code::invalid_state);  // rejected: no state written
  call_table folded;
  for (const auto& e : h.store.events()) folded.apply(e);
  const auto persisted = h.store.persisted_calls();
  REQUIRE(persisted.size() == folded.size());
  for (const auto& [id, c] : folded.calls()) {
    auto it = persisted.find(id);
    REQUIRE(it != persisted.end());
    CHECK(encode_call(it->second) == encode_call(c));
  }
  // A table restored from those states decides as the original does.
  call_table restored;
  for (const auto& [id, c] : persisted) restored.restore(c, folded.last_seq());
  harness again(harness::uncapped(), std::move(restored));
  again.start();
  CHECK(again.call(mt_cmd(action::connected, "C1")).code == reason_code::invalid_state);
  CHECK(again.call(mt_cmd(action::ringing, "C2")).code == reason_code::call_ended);
  CHECK(again.call(mt_cmd(action::ringing, "C4")).code == reason_code::none);
}

namespace {
// Returns once the reactor has run a whole loop iteration after this call (so whatever
// it does at the end of an iteration, such as closing an admission window, is done).
void sync_reactor(reactor_test::harness& h) {
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_shared<std::promise<void>>();
    auto f = p->get_future();
    REQUIRE(h.r.run_on_reactor([p](const engine::call_table&, engine::event_seq) { p->set_value(); }));
    f.get();
  }
}
}  // namespace

TEST_CASE("reactor: admission control admits the floor when idle, the recent answer rate times the delay under load") {
  reactor_options o;
  o.max_pending = 1000;
  o.admit_floor = 4;
  o.max_queue_delay_ms = 200;  // two 100 ms windows' worth of answers
  harness h(o);
  CHECK(h.r.admit_limit() == 4);
  h.store.pause();  // nothing is answered: every submitted request stays outstanding
  h.start();
  std::vector<std::future<reply>> fs;
  for (int i = 0; i < 4; ++i) fs.push_back(h.submit(start_cmd("F" + std::to_string(i))));
  CHECK_FALSE(h.r.admitting());
  CHECK_FALSE(h.r.submit(start_cmd("F9"), [](reply) {}));  // refused at once, not queued
  CHECK(h.metrics.get_counter("yna_requests_shed_total", "").value() == 2);
  h.store.resume();
  for (auto& f : fs) CHECK(f.get().code == reason_code::none);
  CHECK(h.r.admitting());

  // 96 more answers in the same (manual-clock) window: 100 in it. Closing it sets the
  // limit to 100 answers per 100 ms × 200 ms = 200.
  for (int i = 0; i < 96; ++i) REQUIRE(h.call(start_cmd("G" + std::to_string(i))).code == reason_code::none);
  h.clk.advance(100);
  sync_reactor(h);
  CHECK(h.r.admit_limit() == 200);
  CHECK(h.metrics.get_gauge("yna_admission_limit", "").value() == 200);
  // The best of the last five windows counts: four idle windows keep it, the fifth drops
  // it back to the floor.
  for (int w = 0; w < 4; ++w) {
    h.clk.advance(100);
    sync_reactor(h);
    CHECK(h.r.admit_limit() == 200);
  }
  h.clk.advance(100);
  sync_reactor(h);
  CHECK(h.r.admit_limit() == 4);
}

TEST_CASE("reactor: --max-queue-delay 0 turns admission control off; --max-pending still bounds") {
  reactor_options o;
  o.max_pending = 6;
  o.admit_floor = 2;
  o.max_queue_delay_ms = 0;
  harness h(o);
  CHECK(h.r.admit_limit() == 6);
  std::vector<std::future<reply>> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(h.submit(start_cmd("H" + std::to_string(i))));
  CHECK_FALSE(h.r.submit(start_cmd("H9"), [](reply) {}));
  h.start();
  for (auto& f : fs) CHECK(f.get().code == reason_code::none);
}

TEST_CASE("reactor: every loop iteration that did work is measured (yna_reactor_loop_seconds, max)") {
  harness h;
  h.start();
  for (int i = 0; i < 5; ++i) CHECK(h.call(start_cmd("L" + std::to_string(i))).code == reason_code::none);
  const std::string text = h.metrics.render();
  auto value = [&](std::string_view series) {
    const auto at = text.find("\n" + std::string(series) + " ");  // the sample, not its # TYPE line
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + series.size() + 2));
  };
  CHECK(value("yna_reactor_loop_seconds_count") >= 5);  // at least one iteration per request
  CHECK(value("yna_reactor_loop_max_microseconds") > 0);
  CHECK(value("yna_commit_seconds_count") == 5);  // one per event made durable
  CHECK(value("yna_commit_batch_events_count") >= 1);
}

TEST_CASE("reactor: poll_once drives the loop step by step, without threads or sleeps") {
  harness h;  // never start()ed: this thread is the reactor's
  auto f = h.submit(start_cmd("C1"));
  CHECK_FALSE(h.r.poll_once());  // decided, and handed to the store as one batch
  REQUIRE(h.store.events().size() == 1);
  CHECK(f.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);  // not before the store's answer
  CHECK(h.r.committed_seq() == 0);
  CHECK_FALSE(h.r.poll_once());  // the store's answer: applied, then answered
  CHECK(f.get().code == reason_code::none);
  CHECK(h.r.committed_seq() == 1);
  CHECK(h.r.armed_timers() == 2);  // the invitation and answer timers (contract §7)

  h.r.poll_once();
  CHECK(h.store.events().size() == 1);  // nothing due yet
  h.clk.advance(timer_settings{}.invite_ms);
  h.r.poll_once();  // due: the expiry is decided and written
  REQUIRE(h.store.events().size() == 2);
  CHECK(h.store.events()[1].act == action::timeout);
  h.r.poll_once();
  CHECK(h.r.active_calls() == 0);

  h.r.stop();
  CHECK(h.r.poll_once());  // stopped, nothing in flight
}

TEST_CASE("reactor: the replies of a batch are handed over together: one after_batch call per iteration that answered") {
  reactor_options o = harness::uncapped();
  harness h(o);
  int flushes = 0;
  int answered_before_flush = 0;
  int answered = 0;
  h.r.set_after_batch([&] {
    ++flushes;
    answered_before_flush = answered;
  });
  std::vector<reason_code> codes;
  for (int i = 0; i < 3; ++i)
    REQUIRE(h.r.submit(start_cmd("B" + std::to_string(i)), [&](reply r) {
      ++answered;
      codes.push_back(r.code);
    }));
  h.r.poll_once();  // decided and written: nothing answered yet
  CHECK(flushes == 0);
  h.r.poll_once();  // the store's answer: all three answered, then one hand-off
  CHECK(answered == 3);
  CHECK(flushes == 1);
  CHECK(answered_before_flush == 3);  // called after the batch's replies, not between them
  h.r.poll_once();  // nothing to answer: no hand-off
  CHECK(flushes == 1);
  CHECK(codes == std::vector<reason_code>(3, reason_code::none));

  // Replies made outside a write (here a 404 decided at once and still written as a
  // rejected event) go out the same way; so do the refusals of a shut-down.
  h.store.pause();
  command end;
  end.act = action::end;
  end.call_id = "nope";
  REQUIRE(h.r.submit(end, [&](reply) { ++answered; }));
  h.r.poll_once();
  h.r.stop();
  h.store.resume();
  for (int i = 0; i < 3 && !h.r.poll_once(); ++i) {
  }
  CHECK(answered == 4);
  CHECK(flushes == 2);
}

TEST_CASE("reactor: with a write pipeline of 2, the next batch is handed over while the last one is in flight") {
  reactor_options o = harness::uncapped();
  o.max_batch = 1;  // one request per batch, so the batches are easy to count
  o.max_inflight_batches = 2;
  harness h(o);
  h.store.pause();
  auto a = h.submit(start_cmd("C1"));
  auto b = h.submit(start_cmd("C2"));
  auto c = h.submit(start_cmd("C3"));
  h.r.poll_once();
  CHECK(h.store.waiting_appends() == 2);  // C1 and C2 in flight, C3 waits for a slot
  h.r.poll_once();
  CHECK(h.store.waiting_appends() == 2);
  CHECK(a.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  h.store.resume();
  h.r.poll_once();  // both answered, in order; C3 handed over
  CHECK(a.get().code == reason_code::none);
  CHECK(b.get().code == reason_code::none);
  h.r.poll_once();
  CHECK(c.get().code == reason_code::none);
  const auto evs = h.store.events();
  REQUIRE(evs.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(evs[i].seq == i + 1);
    CHECK(evs[i].call_id == "C" + std::to_string(i + 1));
  }
  CHECK(h.r.committed_seq() == 3);
}

TEST_CASE("reactor: with a write pipeline of 1, a batch waits for the last one's answer") {
  reactor_options o = harness::uncapped();
  o.max_batch = 1;
  o.max_inflight_batches = 1;
  harness h(o);
  h.store.pause();
  auto a = h.submit(start_cmd("C1"));
  auto b = h.submit(start_cmd("C2"));
  h.r.poll_once();
  CHECK(h.store.waiting_appends() == 1);
  h.store.resume();
  for (int i = 0; i < 4; ++i) h.r.poll_once();
  CHECK(a.get().code == reason_code::none);
  CHECK(b.get().code == reason_code::none);
  CHECK(h.store.events().size() == 2);
}

TEST_CASE("reactor: a failed write fails the batch in flight behind it, and the next ones are renumbered") {
  reactor_options o = harness::uncapped();
  o.max_batch = 1;
  o.max_inflight_batches = 2;
  harness h(o);
  auto settle = [&] { for (int i = 0; i < 4; ++i) h.r.poll_once(); };
  auto first = h.submit(start_cmd("C0"));
  settle();
  REQUIRE(first.get().code == reason_code::none);

  h.store.pause();
  h.store.fail_next_append(store_error::io_error);
  auto a = h.submit(start_cmd("C1"));
  auto b = h.submit(start_cmd("C2"));
  auto c = h.submit(start_cmd("C3"));
  h.r.poll_once();
  REQUIRE(h.store.waiting_appends() == 2);  // C1 (will fail) and C2 (numbered after it)
  h.store.resume();
  h.r.poll_once();  // both failures answered; C3 was held back until then
  CHECK(a.get().code == reason_code::internal_error);
  CHECK(b.get().code == reason_code::internal_error);
  settle();
  CHECK(c.get().code == reason_code::none);
  const auto evs = h.store.events();
  REQUIRE(evs.size() == 2);
  CHECK(evs[1].seq == 2);  // no gap: C3 took the failed batch's seq
  CHECK(evs[1].call_id == "C3");
  CHECK(h.r.committed_seq() == 2);
  CHECK(h.r.active_calls() == 2);
}
