// Retirement (contract §9): an ended call leaves memory --call-retention after it ended,
// by an engine-caused retire event armed by its ending event, and still answers from the
// log afterwards. Pure decide/apply first, then the reactor over a memory_store (which
// serves as the log the retired calls are read back from).
#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "engine/notify.hpp"
#include "reactor_harness.hpp"

using namespace reactor_test;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

timer_settings retention(epoch_ms ms) {
  timer_settings t;
  t.retention_ms = ms;
  return t;
}

command retire_cmd(std::string id) {
  command c;
  c.act = action::retire;
  c.call_id = std::move(id);
  c.timer = timer_kind::retire;
  return c;
}

reactor_options with_retention(epoch_ms ms) {
  reactor_options o = harness::uncapped();
  o.timers.retention_ms = ms;
  return o;
}

reply get(harness& h, std::string id, actor who) {
  auto p = std::make_shared<std::promise<reply>>();
  auto f = p->get_future();
  REQUIRE(h.r.query(std::move(id), std::move(who), [p](reply r) { p->set_value(std::move(r)); }));
  return f.get();
}

const actor mo_actor{"a", "dev-a", {"14250000001"}, false, ""};
const actor mt_actor{"b", "dev-b", {"14250000002"}, false, ""};
const actor stranger{"x", "dev-x", {"19990000000"}, false, ""};

// Returns once the reactor has run whole loop iterations after this call (each fires
// what is due at the clock's time and writes it: memory_store appends synchronously).
void sync_reactor(harness& h) {
  for (int i = 0; i < 2; ++i) {
    auto p = std::make_shared<std::promise<void>>();
    auto f = p->get_future();
    REQUIRE(h.r.run_on_reactor([p](const call_table&, event_seq) { p->set_value(); }));
    f.get();
  }
}

bool has_retire(const memory_store& s, const std::string& id) {
  for (const auto& e : s.events())
    if (e.act == action::retire && e.call_id == id && e.accepted()) return true;
  return false;
}

}  // namespace

TEST_CASE("retire: every ending event arms the retirement, retention after it; nothing else does") {
  const timer_settings t = retention(2000);
  call_state c;
  event s = decide(nullptr, start_cmd("C1", "k1"), t0, t);
  CHECK_FALSE(s.arms[timer_kind::retire]);
  s.seq = 1;
  apply(c, s);
  event r = decide(&c, mt_cmd(action::ringing, "C1"), t0 + 10, t);
  CHECK_FALSE(r.arms[timer_kind::retire]);
  event end = decide(&c, mt_cmd(action::end, "C1"), t0 + 20, t);
  REQUIRE(end.accepted());
  CHECK(end.status_after == call_status::declined);
  CHECK(end.arms[timer_kind::retire] == t0 + 20 + 2000);
  end.seq = 2;
  apply(c, end);
  CHECK(c.timers[timer_kind::retire] == t0 + 2020);
  // An /end on an ended call is a noop: it arms nothing again.
  event again = decide(&c, mo_cmd(action::end, "C1"), t0 + 30, t);
  CHECK(again.noop);
  CHECK_FALSE(again.arms[timer_kind::retire]);

  // A timer expiry that ends the call arms it too; retention 0 retires at once.
  call_state d;
  event ds = decide(nullptr, start_cmd("D1"), t0, timer_settings{1000, 3000, 0, 0, 0});
  ds.seq = 1;
  apply(d, ds);
  command x;
  x.act = action::timeout;
  x.call_id = "D1";
  x.timer = timer_kind::invite;
  event exp = decide(&d, x, t0 + 1000, timer_settings{1000, 3000, 0, 0, 0});
  CHECK(exp.status_after == call_status::not_reachable);
  CHECK(exp.arms[timer_kind::retire] == t0 + 1000);
  // Negative: never armed.
  event never = decide(&d, x, t0 + 1000, retention(-1));
  CHECK_FALSE(never.arms[timer_kind::retire]);
  // The ringing cap ends a /start at once: armed.
  start_limits lim;
  lim.caps = call_caps{0, 1};
  lim.ringing_to = 1;
  event capped = decide(nullptr, start_cmd("E1"), t0, t, lim);
  CHECK(capped.status_after == call_status::busy);
  CHECK(capped.arms[timer_kind::retire] == t0 + 2000);
}

TEST_CASE("retire: decided only for an ended call whose deadline has passed; changes no status, notifies nobody") {
  const timer_settings t = retention(1000);
  call_state c;
  event s = decide(nullptr, start_cmd("C1"), t0, t);
  s.seq = 1;
  apply(c, s);
  CHECK(decide(&c, retire_cmd("C1"), t0 + 5000, t).rejected == reason_code::invalid_state);  // not ended
  event end = decide(&c, mo_cmd(action::end, "C1"), t0 + 10, t);
  end.seq = 2;
  apply(c, end);
  CHECK(decide(&c, retire_cmd("C1"), t0 + 1009, t).rejected == reason_code::invalid_state);  // too early
  CHECK(decide(nullptr, retire_cmd("C1"), t0 + 1010, t).rejected == reason_code::call_not_found);
  event r = decide(&c, retire_cmd("C1"), t0 + 1010, t);
  REQUIRE(r.accepted());
  CHECK(r.act == action::retire);
  CHECK(r.actor_role == role::engine);
  CHECK(r.status_before == call_status::session_cancelled);
  CHECK(r.status_after == call_status::session_cancelled);
  CHECK(r.timer == timer_kind::retire);
  CHECK(r.timer_deadline == t0 + 1010);
  CHECK_FALSE(derive_notification(r).has_value());
  auto back = decode_event(encode_event(r));
  REQUIRE(back.has_value());
  CHECK(encode_event(*back) == encode_event(r));
  r.seq = 3;
  apply(c, r);
  CHECK(c.retired);
  CHECK_FALSE(c.timers.any());
  CHECK(c.status == call_status::session_cancelled);
}

TEST_CASE("retire: the engine's table drops the call and its /start key; a keeping table marks it") {
  const timer_settings t = retention(0);
  std::vector<event> evs;
  call_table drop;
  call_table keep(call_table::on_retire::keep);
  auto run = [&](command cmd, const call_state* c, epoch_ms at) {
    event e = decide(c, cmd, at, t);
    e.seq = evs.size() + 1;
    drop.apply(e);
    keep.apply(e);
    evs.push_back(e);
    return e;
  };
  run(start_cmd("C1", "k1"), nullptr, t0);
  run(mo_cmd(action::end, "C1"), drop.find("C1"), t0 + 1);
  CHECK(drop.find_start("14250000001", "k1") != nullptr);
  run(retire_cmd("C1"), drop.find("C1"), t0 + 1);
  CHECK(drop.find("C1") == nullptr);
  CHECK(drop.find_start("14250000001", "k1") == nullptr);
  CHECK(drop.size() == 0);
  CHECK(drop.retired() == 1);
  REQUIRE(keep.find("C1") != nullptr);
  CHECK(keep.find("C1")->retired);
  // fold_call: the same call, read back from its events.
  auto folded = fold_call(evs);
  REQUIRE(folded.has_value());
  CHECK(encode_call(*folded) == encode_call(*keep.find("C1")));
}

TEST_CASE("retire: the reactor retires an ended call after the retention, writes its state away, forgets it") {
  harness h(with_retention(1000));
  h.start();
  REQUIRE(h.call(start_cmd("C1", "k1")).code == reason_code::none);
  REQUIRE(h.call(start_cmd("C2", "k2")).code == reason_code::none);
  REQUIRE(h.call(mt_cmd(action::end, "C1")).code == reason_code::none);
  CHECK(h.metrics.get_gauge("yna_calls_in_memory", "", "state=\"ended\"").value() == 1);
  CHECK(h.metrics.get_gauge("yna_calls_in_memory", "", "state=\"live\"").value() == 1);
  CHECK(h.store.persisted_calls().count("C1") == 1);
  h.clk.advance(999);
  sync_reactor(h);  // a loop has fired what was due at +999: nothing
  CHECK_FALSE(has_retire(h.store, "C1"));
  h.clk.advance(1);
  REQUIRE(h.wait_until([&] { return has_retire(h.store, "C1"); }));
  REQUIRE(h.wait_until([&] { return h.r.calls_in_memory() == 1; }));
  CHECK(h.metrics.get_gauge("yna_calls_in_memory", "", "state=\"ended\"").value() == 0);
  CHECK(h.metrics.get_counter("yna_calls_retired_total", "").value() == 1);
  CHECK(h.store.persisted_calls().count("C1") == 0);
  CHECK(h.store.persisted_calls().count("C2") == 1);
  CHECK(h.r.armed_timers() == 2);  // C2's invite and answer timers only
  // Without a lookup (the log is not consulted), the retired call is unknown.
  CHECK(h.call(mt_cmd(action::ringing, "C1")).code == reason_code::call_not_found);
}

TEST_CASE("retire: a retired call still answers, from the log: view, CALL_ENDED, /end noop, 403, repeated /start") {
  harness h(with_retention(0));
  h.r.set_lookup(&h.store);
  h.start();
  REQUIRE(h.call(start_cmd("C1", "k1")).code == reason_code::none);
  REQUIRE(h.call(mt_cmd(action::ringing, "C1")).code == reason_code::none);
  REQUIRE(h.call(mt_cmd(action::connected, "C1")).code == reason_code::none);
  REQUIRE(h.call(mo_cmd(action::end, "C1")).code == reason_code::none);
  REQUIRE(h.wait_until([&] { return has_retire(h.store, "C1"); }));
  REQUIRE(h.wait_until([&] { return h.r.calls_in_memory() == 0; }));
  const std::size_t lookups_before = h.store.lookups();

  reply view = get(h, "C1", mt_actor);
  CHECK(view.code == reason_code::none);
  CHECK(render_success(view, "").find(R"("status":"Terminated")") != std::string::npos);
  CHECK(render_success(view, "").find(R"("callId":"C1")") != std::string::npos);
  CHECK(get(h, "C1", stranger).code == reason_code::forbidden);
  CHECK(get(h, "NOPE", mo_actor).code == reason_code::call_not_found);

  CHECK(h.call(mt_cmd(action::ringing, "C1")).code == reason_code::call_ended);
  CHECK(h.call(mo_cmd(action::hold, "C1")).code == reason_code::call_ended);
  reply end = h.call(mo_cmd(action::end, "C1"));
  CHECK(end.code == reason_code::none);
  command strange = mo_cmd(action::end, "C1");
  strange.who = stranger;
  CHECK(h.call(strange).code == reason_code::forbidden);
  CHECK(h.call(mo_cmd(action::ringing, "NOPE")).code == reason_code::call_not_found);

  // The same from + clientCorrelator: that call, nothing created (even with another `to`).
  command repeat = start_cmd("C9", "k1");
  repeat.to = "14250000003";
  reply again = h.call(repeat);
  CHECK(again.code == reason_code::none);
  CHECK(render_success(again, "").find(R"("callId":"C1")") != std::string::npos);
  CHECK(render_success(again, "").find(R"("to":"14250000002")") != std::string::npos);
  const auto evs = h.store.events();
  CHECK(evs.back().act == action::start);
  CHECK(evs.back().noop);
  CHECK(evs.back().call_id == "C1");
  CHECK(h.r.calls_in_memory() == 0);  // nothing came back into memory
  // A new key is a new call.
  reply fresh = h.call(start_cmd("C10", "k2"));
  CHECK(render_success(fresh, "").find(R"("callId":"C10")") != std::string::npos);
  CHECK(h.store.lookups() > lookups_before);
  CHECK(h.metrics.get_counter("yna_call_lookups_total", "").value() > 0);

  // Every decision on the retired call is an event, as for any call (contract §6).
  std::size_t on_c1 = 0;
  for (const auto& e : evs)
    if (e.call_id == "C1") ++on_c1;
  CHECK(on_c1 >= 9);  // start, ringing, connected, end, retire, 2 × CALL_ENDED, end noop, 403 … , repeat
}

TEST_CASE("retire: a restart with retired calls in the log: the persisted state has only the others") {
  std::map<std::string, call_state> persisted;
  std::vector<event> evs;
  {
    harness h(with_retention(0));
    h.start();
    REQUIRE(h.call(start_cmd("C1", "k1")).code == reason_code::none);
    REQUIRE(h.call(start_cmd("C2", "k2")).code == reason_code::none);
    REQUIRE(h.call(mo_cmd(action::end, "C1")).code == reason_code::none);
    REQUIRE(h.wait_until([&] { return has_retire(h.store, "C1"); }));
    REQUIRE(h.wait_until([&] { return h.store.persisted_calls().size() == 1; }));
    persisted = h.store.persisted_calls();
    evs = h.store.events();
  }
  CHECK(persisted.count("C2") == 1);
  call_table folded;
  for (const auto& e : evs) folded.apply(e);
  CHECK(folded.size() == 1);
  CHECK(encode_call(persisted.at("C2")) == encode_call(*folded.find("C2")));
}

TEST_CASE("retire: restoring a call already in the table replaces it, counted once (live, ringing, /start key)") {
  call_table t;
  call_state c;
  event s = decide(nullptr, start_cmd("C1", "k1"), t0);
  s.seq = 1;
  apply(c, s);
  t.restore(c, 1);
  t.restore(c, 1);
  CHECK(t.size() == 1);
  CHECK(t.active() == 1);
  CHECK(t.live_from_count("14250000001") == 1);
  CHECK(t.ringing_count("14250000002") == 1);
  event end = decide(&c, mo_cmd(action::end, "C1"), t0 + 1);
  end.seq = 2;
  apply(c, end);
  t.restore(c, 2);  // the later state wins
  CHECK(t.active() == 0);
  CHECK(t.live_from_count("14250000001") == 0);
  CHECK(t.ringing_count("14250000002") == 0);
  CHECK(t.find_start("14250000001", "k1") != nullptr);
}
