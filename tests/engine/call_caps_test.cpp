// The call caps of contract §3a (issue 14, point 9): at most --max-calls-per-number calls
// not ended from one number (a further /start is 429 TOO_MANY_CALLS), and a /start to a
// number that already has --max-ringing-per-number calls ringing ends at once Busy,
// reason too-many-calls, told to MO only. 0 turns either off.
#include <doctest/doctest.h>

#include <map>
#include <mutex>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "engine/notify.hpp"
#include "reactor_harness.hpp"

using namespace reactor_test;

namespace {

constexpr const char* mo_num = "14250000001";
constexpr const char* mt_num = "14250000002";

command start_from(std::string id, std::string from, std::string to, std::optional<std::string> corr = std::nullopt) {
  command c;
  c.act = action::start;
  c.new_call_id = std::move(id);
  c.who = actor{"sub-" + from, "dev-" + from, {from}, false, ""};
  c.from = std::move(from);
  c.to = std::move(to);
  c.sdp = sdp;
  c.client_correlator = std::move(corr);
  c.method = "POST";
  c.path = "/start";
  return c;
}

command act_as(action a, std::string id, std::string number) {
  command c;
  c.act = a;
  c.call_id = std::move(id);
  c.who = actor{"sub-" + number, "dev-" + number, {number}, false, ""};
  if (a != action::end && a != action::ringing) c.sdp = sdp;
  c.method = a == action::end ? "DELETE" : "POST";
  return c;
}

start_limits limits(std::size_t calls_from, std::size_t ringing_to, call_caps caps = {}) {
  start_limits l;
  l.caps = caps;
  l.calls_from = calls_from;
  l.ringing_to = ringing_to;
  return l;
}

std::string number(int i) { return std::to_string(14260000000LL + i); }

reactor_options capped(std::size_t calls, std::size_t ringing) {
  reactor_options o;
  o.caps = call_caps{calls, ringing};
  return o;
}

// Collects the notifications of every committed event, as the WebSocket hub derives them.
struct collector final : event_listener {
  std::mutex mu;
  std::vector<notification> all;
  void on_committed(const event& e, const call_state*) override {
    if (auto n = derive_notification(e)) {
      std::lock_guard lk(mu);
      all.push_back(*n);
    }
  }
  // Invitations the devices of `msisdn` are sent, and status frames by status.
  std::size_t invitations_to(const std::string& msisdn) {
    std::lock_guard lk(mu);
    std::size_t k = 0;
    for (const auto& n : all) k += n.type == notification_type::invitation && n.is_for("x", "d", {msisdn});
    return k;
  }
  std::size_t frames_for(const std::string& msisdn) {
    std::lock_guard lk(mu);
    std::size_t k = 0;
    for (const auto& n : all) k += n.is_for("x", "d", {msisdn});
    return k;
  }
};

double capped_metric(registry& m, const char* cap) {
  return static_cast<double>(
      m.get_counter("yna_calls_capped_total", "", std::string("cap=\"") + cap + "\"").value());
}

std::size_t count(const std::vector<event>& evs, reason_code rc) {
  std::size_t k = 0;
  for (const auto& e : evs) k += e.act == action::start && e.rejected == rc;
  return k;
}
std::size_t count_after(const std::vector<event>& evs, call_status s) {
  std::size_t k = 0;
  for (const auto& e : evs) k += e.act == action::start && e.accepted() && !e.noop && e.status_after == s;
  return k;
}

// The table the reactor holds now (read on its thread).
template <class F>
void on_table(harness& h, F f) {
  auto p = std::make_shared<std::promise<void>>();
  auto done = p->get_future();
  REQUIRE(h.r.run_on_reactor([&, p](const call_table& t, event_seq) {
    f(t);
    p->set_value();
  }));
  done.get();
}

}  // namespace

// ------------------------------------------------------------------------------ decide

TEST_CASE("caps decide: the call after max-calls-per-number from one number is 429 TOO_MANY_CALLS, after input and owner checks") {
  const command s = start_from("NEW", mo_num, mt_num);
  CHECK(decide(nullptr, s, 1, {}, limits(99, 0)).accepted());
  const event e = decide(nullptr, s, 1, {}, limits(100, 0));
  CHECK(e.rejected == reason_code::too_many_calls);
  CHECK(schemas::http_status(e.rejected) == 429);
  CHECK(schemas::to_string(e.rejected) == "TOO_MANY_CALLS");
  CHECK(e.call_id.empty());
  CHECK(!e.arms.any());
  CHECK(explain_rejection(e, nullptr).find(mo_num) != std::string::npos);
  CHECK(!derive_notification(e));  // rejected: nobody is told
  // Order of checks (contract §3a): input 400 and owner 403 come first.
  command bad = s;
  bad.input_error = reason_code::invalid_sdp;
  CHECK(decide(nullptr, bad, 1, {}, limits(1000, 1000)).rejected == reason_code::invalid_sdp);
  command stranger = s;
  stranger.who = actor{"eve", "eve-dev", {"19990000000"}, false, ""};
  CHECK(decide(nullptr, stranger, 1, {}, limits(1000, 1000)).rejected == reason_code::forbidden);
  // Both caps reached: the calls cap refuses first (nothing is created).
  CHECK(decide(nullptr, s, 1, {}, limits(100, 32)).rejected == reason_code::too_many_calls);
}

TEST_CASE("caps decide: the start after max-ringing-per-number ringing calls ends at once Busy, reason too-many-calls, no call timers") {
  const command s = start_from("NEW", mo_num, mt_num);
  const event ok = decide(nullptr, s, 1000, {}, limits(0, 31));
  CHECK(ok.status_after == call_status::initial);
  CHECK(ok.arms.any());
  const event e = decide(nullptr, s, 1000, {}, limits(0, 32));
  REQUIRE(e.accepted());
  CHECK_FALSE(e.noop);
  CHECK(e.call_id == "NEW");
  CHECK(e.status_after == call_status::busy);
  CHECK(e.reason == std::optional<std::string>("too-many-calls"));
  deadlines only_retire;  // an ended call: only its retirement (contract §9)
  only_retire[timer_kind::retire] = 1000 + timer_settings{}.retention_ms;
  CHECK(e.arms == only_retire);
  CHECK(e.actor_role == role::mo);
  call_state c;
  apply(c, e);
  CHECK(c.status == call_status::busy);
  CHECK(c.ended_at == std::optional<epoch_ms>(1000));
  CHECK(c.end_reason == std::optional<std::string>("too-many-calls"));
  CHECK(c.timers == only_retire);
  CHECK(encode_call_view(c, "").find(R"("status":"Busy")") != std::string::npos);
  CHECK(encode_call_view(c, "").find(R"("endReason":"too-many-calls")") != std::string::npos);
  // Anything but /end on it is CALL_ENDED; /end is a no-op.
  CHECK(decide(&c, act_as(action::ringing, "NEW", mt_num), 1001).rejected == reason_code::call_ended);
  CHECK(decide(&c, act_as(action::end, "NEW", mo_num), 1001).noop);
}

TEST_CASE("caps decide: an idempotent repeat is never refused; 0 turns each cap off") {
  const command s = start_from("SECOND", mo_num, mt_num, "corr-1");
  call_state first;
  apply(first, decide(nullptr, start_from("FIRST", mo_num, mt_num, "corr-1"), 1));
  const event again = decide(&first, s, 2, {}, limits(1000, 1000));
  CHECK(again.accepted());
  CHECK(again.noop);
  CHECK(again.call_id == "FIRST");
  const event off = decide(nullptr, s, 2, {}, limits(1'000'000, 1'000'000, call_caps{0, 0}));
  CHECK(off.status_after == call_status::initial);
  CHECK(decide(nullptr, s, 2, {}, limits(1'000'000, 0, call_caps{0, 32})).status_after == call_status::initial);
  CHECK(decide(nullptr, s, 2, {}, limits(0, 1'000'000, call_caps{100, 0})).status_after == call_status::initial);
  CHECK(decide(nullptr, s, 2, {}, limits(1, 0, call_caps{1, 0})).rejected == reason_code::too_many_calls);
}

TEST_CASE("caps notify: the capped start is a Busy status to every MO device (the requesting one too), nothing to MT, same on replay") {
  event e = decide(nullptr, start_from("CAP", mo_num, mt_num), 5000, {}, limits(0, 32));
  e.seq = 7;
  auto n = derive_notification(e);
  REQUIRE(n);
  CHECK(n->type == notification_type::status);
  CHECK(n->status == "Busy");
  CHECK(n->reason == std::optional<std::string>("too-many-calls"));
  CHECK(n->recipients() == std::vector<std::string>{mo_num});
  const std::string mo_sub = std::string("sub-") + mo_num, mo_dev = std::string("dev-") + mo_num;
  CHECK(n->is_for(mo_sub, mo_dev, {mo_num}));             // the requesting device: the engine caused it
  CHECK(n->is_for(mo_sub, "other-phone", {mo_num}));      // every other MO device
  CHECK_FALSE(n->is_for("mt-sub", "mt-phone", {mt_num}));  // the callee is not told at all
  CHECK(n->is_for("both", "d", {mo_num, mt_num}));        // a token owning both numbers: as MO
  const std::string frame = encode_notification(*n, "/v1");
  CHECK(frame.rfind(R"({"sessionStatusNotification":{"status":"Busy",)", 0) == 0);
  CHECK(frame.find(R"("reason":"too-many-calls")") != std::string::npos);
  CHECK(frame.find(R"("sdp")") == std::string::npos);
  CHECK(frame.find(R"("sequenceNumber":7)") != std::string::npos);
  // Replay reads the stored record: the same frame, the same recipients.
  auto back = decode_event(encode_event(e));
  REQUIRE(back.has_value());
  auto n2 = derive_notification(*back);
  REQUIRE(n2);
  CHECK(encode_notification(*n2, "/v1") == frame);
  CHECK(n2->recipients() == n->recipients());
  CHECK_FALSE(n2->is_for("mt-sub", "mt-phone", {mt_num}));
}

// ------------------------------------------------------------------------------ call_table

TEST_CASE("caps call_table: calls not ended per from and ringing per to, kept by apply and by restoring persisted states") {
  call_table t;
  event_seq seq = 0;
  auto run = [&](const command& c, start_limits l = {}) {
    event e = decide(c.act == action::start ? nullptr : t.find(c.call_id), c, 1000 + static_cast<epoch_ms>(seq), {}, l);
    e.seq = ++seq;
    t.apply(e);
    return e;
  };
  run(start_from("A", mo_num, mt_num));
  run(start_from("B", mo_num, mt_num));
  run(start_from("C", mo_num, "14250000003"));
  CHECK(t.live_from_count(mo_num) == 3);
  CHECK(t.ringing_count(mt_num) == 2);
  CHECK(t.ringing_count("14250000003") == 1);
  run(act_as(action::ringing, "A", mt_num));  // still early: still ringing
  CHECK(t.ringing_count(mt_num) == 2);
  run(act_as(action::connected, "A", mt_num));  // answered: no longer ringing, still not ended
  CHECK(t.ringing_count(mt_num) == 1);
  CHECK(t.live_from_count(mo_num) == 3);
  // A start ended at once by the ringing cap counts as neither.
  const event capped = run(start_from("D", mo_num, mt_num), limits(0, 32, call_caps{100, 1}));
  CHECK(capped.status_after == call_status::busy);
  CHECK(t.live_from_count(mo_num) == 3);
  CHECK(t.ringing_count(mt_num) == 1);
  CHECK(t.active() == 3);
  CHECK(t.ringing(mt_num).size() == 1);  // a device connecting later is not invited to D
  const std::size_t live_before = t.active();
  call_table copy;
  for (const auto& [id, c] : t.calls()) copy.restore(*decode_call(encode_call(c)), t.last_seq());
  CHECK(copy.live_from_count(mo_num) == 3);
  CHECK(copy.ringing_count(mt_num) == 1);
  CHECK(copy.active() == live_before);
  run(act_as(action::end, "B", mt_num));
  run(act_as(action::end, "A", mo_num));
  run(act_as(action::end, "A", mo_num));  // no-op: counted once
  CHECK(t.live_from_count(mo_num) == 1);
  CHECK(t.ringing_count(mt_num) == 0);
  run(act_as(action::end, "C", mo_num));
  CHECK(t.live_from_count(mo_num) == 0);
  CHECK(t.ringing_count("14250000003") == 0);
  CHECK(t.active() == 0);
}

// ------------------------------------------------------------------------------ reactor

TEST_CASE("caps reactor: the 101st call not ended from one number is refused 429 and stored; ending one frees a slot") {
  harness h(capped(100, 32));
  h.start();
  for (int i = 0; i < 100; ++i)
    REQUIRE(h.call(start_from("C" + std::to_string(i), mo_num, number(i))).code == reason_code::none);
  const reply refused = h.call(start_from("C100", mo_num, number(100)));
  CHECK(refused.code == reason_code::too_many_calls);
  CHECK(refused.message.find("--max-calls-per-number") != std::string::npos);
  auto evs = h.store.events();
  REQUIRE(evs.size() == 101);
  CHECK(evs.back().rejected == reason_code::too_many_calls);  // a rejected event, like the others
  CHECK(capped_metric(h.metrics, "calls_per_number") == 1);
  CHECK(h.r.active_calls() == 100);
  // Another number is not affected.
  CHECK(h.call(start_from("OTHER", "14250000009", number(0))).code == reason_code::none);
  // MT ends one (Declined): a slot is free, exactly one.
  REQUIRE(h.call(act_as(action::end, "C7", number(7))).code == reason_code::none);
  CHECK(h.call(start_from("C101", mo_num, number(101))).code == reason_code::none);
  CHECK(h.call(start_from("C102", mo_num, number(102))).code == reason_code::too_many_calls);
  // An answered call still counts; a timer ending one frees it too.
  REQUIRE(h.call(act_as(action::connected, "C8", number(8))).code == reason_code::none);
  CHECK(h.call(start_from("C103", mo_num, number(103))).code == reason_code::too_many_calls);
  h.clk.advance(timer_settings{}.invite_ms + 1);  // every unanswered call: NotReachable
  CHECK(h.wait_until([&] { return h.r.active_calls() == 1; }));  // C8 alone is left (answered)
  CHECK(h.call(start_from("C104", mo_num, number(104))).code == reason_code::none);
  CHECK(capped_metric(h.metrics, "calls_per_number") == 3);  // C100, C102, C103
}

TEST_CASE("caps reactor: the 33rd call ringing one number ends Busy at once; the callee gets no invitation, now or on connect") {
  harness h(capped(100, 32));
  collector seen;
  h.r.set_listener(&seen);
  h.start();
  for (int i = 0; i < 32; ++i)
    REQUIRE(h.call(start_from("R" + std::to_string(i), number(i), mt_num)).code == reason_code::none);
  const reply capped_reply = h.call(start_from("R32", number(32), mt_num, "corr-32"));
  REQUIRE(capped_reply.code == reason_code::none);  // accepted: the caller learns Busy from its notification
  CHECK(render_success(capped_reply, "").find(R"("callId":"R32")") != std::string::npos);
  const event last = h.store.events().back();
  CHECK(last.status_after == call_status::busy);
  CHECK(last.reason == std::optional<std::string>("too-many-calls"));
  CHECK_FALSE(last.arms[timer_kind::invite]);
  CHECK_FALSE(last.arms[timer_kind::answer]);
  CHECK(last.arms[timer_kind::retire]);
  CHECK(h.r.armed_timers() == 65);  // the 32 ringing calls' invite and answer timers, R32's retirement
  CHECK(seen.invitations_to(mt_num) == 32);
  CHECK(seen.frames_for(mt_num) == 32);        // nothing else reached the callee either
  CHECK(seen.frames_for(number(32)) == 1);     // the caller: one Busy frame
  CHECK(capped_metric(h.metrics, "ringing_per_number") == 1);
  CHECK(capped_metric(h.metrics, "calls_per_number") == 0);
  on_table(h, [&](const call_table& t) {
    CHECK(t.ringing(mt_num).size() == 32);  // what a device connecting now is invited to
    for (const call_state* c : t.ringing(mt_num)) CHECK(c->call_id != "R32");
    const call_state* c = t.find("R32");
    REQUIRE(c);
    CHECK(c->status == call_status::busy);
    CHECK(c->end_reason == std::optional<std::string>("too-many-calls"));
    CHECK(t.live_from_count(number(32)) == 0);
  });
  // Its idempotent repeat answers the first (capped) call.
  const reply repeat = h.call(start_from("R32b", number(32), mt_num, "corr-32"));
  CHECK(repeat.code == reason_code::none);
  CHECK(render_success(repeat, "") == render_success(capped_reply, ""));
  // MT answers one: it stops ringing, and the next call rings.
  REQUIRE(h.call(act_as(action::connected, "R0", mt_num)).code == reason_code::none);
  // (MT is in a call now: R33 rings it with callWaiting, contract §10, and MO is told Waiting.)
  REQUIRE(h.call(start_from("R33", number(33), mt_num)).code == reason_code::none);
  const auto after33 = h.store.events();
  REQUIRE(after33.size() >= 2);
  CHECK(after33[after33.size() - 2].status_after == call_status::initial);
  CHECK(after33[after33.size() - 2].call_waiting);
  CHECK(after33.back().act == action::waiting);
  REQUIRE(h.call(start_from("R34", number(34), mt_num)).code == reason_code::none);
  CHECK(h.store.events().back().status_after == call_status::busy);
  CHECK(seen.invitations_to(mt_num) == 33);
}

TEST_CASE("caps reactor: a burst decided within one batch cannot pass the caps (starts in flight count)") {
  reactor_options o = capped(100, 32);
  o.max_pending = 10000;
  o.max_queue_delay_ms = 0;  // admit the whole burst at once
  SUBCASE("2,000 starts from one number, before any is durable: exactly 100 accepted") {
    harness h(o);
    std::vector<std::future<reply>> fs;
    for (int i = 0; i < 2000; ++i) fs.push_back(h.submit(start_from("B" + std::to_string(i), mo_num, number(i))));
    h.start();  // the reactor decides all 2,000 before the first write is durable
    std::size_t ok = 0, refused = 0;
    for (auto& f : fs) {
      const auto code = f.get().code;
      ok += code == reason_code::none;
      refused += code == reason_code::too_many_calls;
    }
    CHECK(ok == 100);
    CHECK(refused == 1900);
    const auto evs = h.store.events();
    CHECK(count_after(evs, call_status::initial) == 100);
    CHECK(count(evs, reason_code::too_many_calls) == 1900);
    CHECK(h.r.active_calls() == 100);
    // Nothing is left counted in flight: ending one call frees exactly one slot.
    REQUIRE(h.call(act_as(action::end, "B0", mo_num)).code == reason_code::none);
    CHECK(h.call(start_from("X1", mo_num, number(5000))).code == reason_code::none);
    CHECK(h.call(start_from("X2", mo_num, number(5001))).code == reason_code::too_many_calls);
  }
  SUBCASE("2,000 starts from 2,000 callers to one number: 32 ring, the rest end Busy, 32 invitations") {
    harness h(o);
    collector seen;
    h.r.set_listener(&seen);
    std::vector<std::future<reply>> fs;
    for (int i = 0; i < 2000; ++i) fs.push_back(h.submit(start_from("B" + std::to_string(i), number(i), mt_num)));
    h.start();
    for (auto& f : fs) CHECK(f.get().code == reason_code::none);
    const auto evs = h.store.events();
    CHECK(count_after(evs, call_status::initial) == 32);
    CHECK(count_after(evs, call_status::busy) == 1968);
    CHECK(seen.invitations_to(mt_num) == 32);
    CHECK(capped_metric(h.metrics, "ringing_per_number") == 1968);
    CHECK(h.r.active_calls() == 32);
  }
  SUBCASE("a failed write releases its starts: they count neither in flight nor in the table") {
    o.caps = call_caps{3, 3};
    harness h(o);
    h.store.fail_next_append(store_error::io_error);
    std::vector<std::future<reply>> fs;
    for (int i = 0; i < 3; ++i) fs.push_back(h.submit(start_from("F" + std::to_string(i), mo_num, mt_num)));
    h.start();
    for (auto& f : fs) CHECK(f.get().code == reason_code::internal_error);
    CHECK(h.store.events().empty());
    for (int i = 0; i < 3; ++i) {
      CHECK(h.call(start_from("G" + std::to_string(i), mo_num, mt_num)).code == reason_code::none);
      CHECK(h.store.events().back().status_after == call_status::initial);
    }
    CHECK(h.call(start_from("G3", mo_num, "14250000003")).code == reason_code::too_many_calls);
  }
  SUBCASE("starts that time out before being written (408) are released too") {
    o.caps = call_caps{3, 0};
    o.request_timeout_ms = 1000;
    o.max_inflight_batches = 1;  // T1 and T2 wait for the next write instead of joining T0 in flight
    harness h(o);
    h.store.pause();
    h.start();
    auto first = h.submit(start_from("T0", mo_num, mt_num));  // in flight: the store holds it
    REQUIRE(h.wait_until([&] { return h.store.has_waiting_append(); }));
    auto second = h.submit(start_from("T1", mo_num, mt_num));  // decided, waiting for the next write
    auto third = h.submit(start_from("T2", mo_num, mt_num));
    on_table(h, [](const call_table&) {});  // the reactor has decided both (messages run in order)
    h.clk.advance(2000);
    CHECK(second.get().code == reason_code::request_timeout);
    CHECK(third.get().code == reason_code::request_timeout);
    h.store.resume();
    CHECK(first.get().code == reason_code::none);
    CHECK(h.call(start_from("T3", mo_num, mt_num)).code == reason_code::none);
    CHECK(h.call(start_from("T4", mo_num, mt_num)).code == reason_code::none);
    CHECK(h.call(start_from("T5", mo_num, mt_num)).code == reason_code::too_many_calls);
  }
}

TEST_CASE("caps reactor: an idempotent repeat is not refused by the caps") {
  harness h(capped(1, 1));
  h.start();
  const reply first = h.call(start_from("I1", mo_num, mt_num, "corr-i"));
  REQUIRE(first.code == reason_code::none);
  CHECK(h.call(start_from("I2", mo_num, "14250000003")).code == reason_code::too_many_calls);
  const reply again = h.call(start_from("I3", mo_num, mt_num, "corr-i"));
  CHECK(again.code == reason_code::none);
  CHECK(render_success(again, "") == render_success(first, ""));
  CHECK(h.store.events().back().noop);
  // Also while the first is still in flight: the repeat waits for it, then answers it.
  harness g(capped(1, 1));
  std::vector<std::future<reply>> fs;
  for (int i = 0; i < 5; ++i) fs.push_back(g.submit(start_from("J" + std::to_string(i), mo_num, mt_num, "corr-j")));
  g.start();
  for (auto& f : fs) {
    const reply r = f.get();
    CHECK(r.code == reason_code::none);
    CHECK(render_success(r, "").find(R"("callId":"J0")") != std::string::npos);
  }
}

TEST_CASE("caps reactor: 0 turns both caps off") {
  harness h(capped(0, 0));
  h.start();
  for (int i = 0; i < 150; ++i)
    REQUIRE(h.call(start_from("Z" + std::to_string(i), mo_num, mt_num)).code == reason_code::none);
  CHECK(count_after(h.store.events(), call_status::initial) == 150);
  CHECK(h.r.active_calls() == 150);
}

TEST_CASE("caps reactor: after a restart the recovered table (log fold or persisted states) still holds the counts") {
  std::vector<event> evs;
  {
    harness h(capped(3, 2));
    h.start();
    REQUIRE(h.call(start_from("P0", mo_num, mt_num)).code == reason_code::none);
    REQUIRE(h.call(start_from("P1", mo_num, mt_num)).code == reason_code::none);
    REQUIRE(h.call(start_from("P2", mo_num, mt_num)).code == reason_code::none);  // Busy: not counted
    REQUIRE(h.call(start_from("P3", mo_num, "14250000003")).code == reason_code::none);
    evs = h.store.events();
  }
  REQUIRE(evs.size() == 4);
  CHECK(evs[2].status_after == call_status::busy);
  call_table folded;
  for (const auto& e : evs) folded.apply(e);
  std::optional<call_table> from_state(std::in_place);
  for (const auto& [id, c] : folded.calls()) from_state->restore(*decode_call(encode_call(c)), folded.last_seq());
  for (call_table* t : {&folded, &*from_state}) {
    harness h(capped(3, 2), *t);
    h.start();
    CHECK(h.call(start_from("Q0", mo_num, "14250000004")).code == reason_code::too_many_calls);
    CHECK(h.call(start_from("Q1", "14250000005", mt_num)).code == reason_code::none);
    CHECK(h.store.events().back().status_after == call_status::busy);
    CHECK(h.call(start_from("Q2", "14250000005", "14250000003")).code == reason_code::none);
    CHECK(h.store.events().back().status_after == call_status::initial);
  }
}
