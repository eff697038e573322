// Contract §10 in the pure functions: route() decides what the engine does after a
// /start, an MT's busy /end and the ringing timers, and the events it returns fold and
// notify as the contract says. The settings, busy numbers and presence come from a fake
// routing_view; the expectations are written from the contract, not from the engine.
#include "engine/routing.hpp"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "engine/notify.hpp"
#include "engine/settings.hpp"
#include "tests/engine/reactor_harness.hpp"

namespace {

using namespace engine;
using schemas::reason_code;

constexpr const char* mo_num = "14250000001";
constexpr const char* mt_num = "14250000002";
constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

struct fake_view final : routing_view {
  std::map<std::string, number_settings> rules;
  std::set<std::string> busy, waiting, offline;
  number_settings settings(std::string_view n) const override {
    auto it = rules.find(std::string(n));
    if (it != rules.end()) return it->second;
    number_settings d;
    d.msisdn = std::string(n);
    return d;
  }
  bool engaged(std::string_view n) const override { return busy.count(std::string(n)) > 0; }
  bool has_waiting(std::string_view n) const override { return waiting.count(std::string(n)) > 0; }
  bool reachable(std::string_view n) const override { return offline.count(std::string(n)) == 0; }

  number_settings& of(const std::string& n) {
    auto& s = rules[n];
    s.msisdn = n;
    return s;
  }
};

actor person(const std::string& sub, const std::string& number) { return actor{sub, sub + "-dev", {number}, false, ""}; }

const timer_settings timers{30'000, 90'000, 15'000, 3'600'000, 60'000};

command start_cmd(const std::string& to = mt_num) {
  command c;
  c.act = action::start;
  c.new_call_id = "CALL1";
  c.who = person("mo", mo_num);
  c.from = mo_num;
  c.to = to;
  c.sdp = sdp;
  return c;
}

// A /start decided and routed at t=1000: the start event, then the engine's events.
struct routed {
  std::vector<event> events;
  call_state call;
  const event& trigger() const { return events.front(); }
  std::vector<std::string> acts() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.emplace_back(to_string(e.act));
    return out;
  }
};

routed run_start(const fake_view& v, const std::string& to = mt_num) {
  routed r;
  event e = decide(nullptr, start_cmd(to), 1000, timers);
  REQUIRE(e.accepted());
  auto follow = route(e, nullptr, v, timers);
  r.events.push_back(e);
  for (auto& f : follow) r.events.push_back(f);
  event_seq seq = 0;
  for (auto& ev : r.events) {
    ev.seq = ++seq;
    apply(r.call, ev);
  }
  return r;
}

// The numbers whose devices a notification reaches (by is_for), "" when none.
std::set<std::string> told(const event& e) {
  std::set<std::string> out;
  auto n = derive_notification(e);
  if (!n) return out;
  for (const auto& num : {std::string(mo_num), std::string(mt_num), std::string("14250000003"),
                          std::string("14250000004"), std::string("14250000005")})
    if (n->is_for("someone", "device", {num})) out.insert(num);
  return out;
}

}  // namespace

TEST_CASE("routing: a /start to a number without settings rings it, with nothing after it") {
  fake_view v;
  auto r = run_start(v);
  CHECK(r.events.size() == 1);
  CHECK(!r.trigger().routed);
  CHECK(!r.trigger().arms[timer_kind::no_answer]);
  CHECK(r.call.status == call_status::initial);
  CHECK(told(r.trigger()) == std::set<std::string>{mt_num});
}

TEST_CASE("routing: CFNR set arms the start's own noAnswer timer from the number's timeout") {
  fake_view v;
  auto& s = v.of(mt_num);
  s.no_answer = "14250000003";
  s.no_answer_timeout_s = 7;
  auto r = run_start(v);
  REQUIRE(r.events.size() == 1);
  CHECK(r.trigger().arms[timer_kind::no_answer] == 1000 + 7000);
  CHECK(r.call.timers[timer_kind::no_answer] == 8000);
  CHECK(r.call.timers[timer_kind::answer] == 1000 + 90'000);
}

TEST_CASE("routing: unconditional forwarding: start gives way, Forwarded to MO only, the target invited") {
  fake_view v;
  v.of(mt_num).unconditional = "14250000003";
  auto r = run_start(v);
  CHECK(r.acts() == std::vector<std::string>{"start", "forward", "divert"});
  CHECK(r.trigger().routed);
  CHECK(!r.trigger().arms.any());
  CHECK(told(r.trigger()).empty());  // the dialled number is never invited
  const event& fw = r.events[1];
  CHECK(fw.actor_role == role::engine);
  CHECK(fw.diversion == mt_num);
  CHECK(fw.to == "14250000003");
  CHECK(fw.reason == "unconditional");
  CHECK(fw.mt_unaware);
  CHECK(*fw.status_after == call_status::forwarded);
  CHECK(told(fw) == std::set<std::string>{mo_num});
  const event& dv = r.events[2];
  CHECK(dv.diversion == mt_num);
  CHECK(dv.arms[timer_kind::invite] == 1000 + 30'000);
  CHECK(dv.arms[timer_kind::answer] == 1000 + 90'000);
  CHECK(told(dv) == std::set<std::string>{"14250000003"});
  auto inv = derive_notification(dv);
  REQUIRE(inv);
  CHECK(inv->type == notification_type::invitation);
  const std::string frame = encode_notification(*inv, "");
  CHECK(frame.find("\"diversionAddress\":\"tel:+14250000002\"") != std::string::npos);
  CHECK(frame.find("\"originatorAddress\":\"tel:+14250000001\"") != std::string::npos);
  CHECK(frame.find("\"sdp\"") != std::string::npos);  // MO's offer travels with it
  // The call: dialled number, current MT, one diversion.
  CHECK(r.call.to == "14250000003");
  CHECK(r.call.dialled_number() == mt_num);
  REQUIRE(r.call.diversions.size() == 1);
  CHECK(r.call.diversions[0] == diversion{mt_num, "14250000003", "unconditional", 1000});
  CHECK(r.call.status == call_status::forwarded);
  CHECK(is_early(r.call.status));
}

TEST_CASE("routing: busy MT with call waiting on: the call rings with callWaiting and MO is told Waiting") {
  fake_view v;
  v.busy.insert(mt_num);
  auto r = run_start(v);
  CHECK(r.acts() == std::vector<std::string>{"start", "waiting"});
  CHECK(r.trigger().call_waiting);
  CHECK(!r.trigger().routed);
  auto inv = derive_notification(r.trigger());
  REQUIRE(inv);
  CHECK(encode_notification(*inv, "").find("\"callWaiting\":true") != std::string::npos);
  CHECK(*r.events[1].status_after == call_status::waiting);
  CHECK(told(r.events[1]) == std::set<std::string>{mo_num, mt_num});  // both aware; engine-caused
  CHECK(r.call.status == call_status::waiting);
  CHECK(r.call.call_waiting);
  CHECK(r.call.timers[timer_kind::invite]);  // no MT progress yet: the invite timer runs
}

TEST_CASE("routing: busy MT with one call waiting already, or call waiting off") {
  SUBCASE("no CFB: the engine's Busy, reason user-busy, MO only") {
    fake_view v;
    v.busy.insert(mt_num);
    v.waiting.insert(mt_num);
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "release"});
    CHECK(r.trigger().routed);
    CHECK(*r.events[1].status_after == call_status::busy);
    CHECK(r.events[1].reason == "user-busy");
    CHECK(told(r.events[1]) == std::set<std::string>{mo_num});
    CHECK(r.call.status == call_status::busy);
    CHECK(r.call.end_reason == "user-busy");
    CHECK(r.call.timers[timer_kind::retire] == 1000 + 60'000);
    CHECK(!r.call.timers[timer_kind::invite]);
  }
  SUBCASE("call waiting off, CFB set: forwarded user-busy") {
    fake_view v;
    v.busy.insert(mt_num);
    v.of(mt_num).call_waiting = false;
    v.of(mt_num).busy = "14250000003";
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "forward", "divert"});
    CHECK(r.events[1].reason == "user-busy");
  }
}

TEST_CASE("routing: not reachable (no socket, no pusher): CFNRc when set, else it rings as before") {
  fake_view v;
  v.offline.insert(mt_num);
  CHECK(run_start(v).acts() == std::vector<std::string>{"start"});
  v.of(mt_num).not_reachable = "14250000003";
  auto r = run_start(v);
  CHECK(r.acts() == std::vector<std::string>{"start", "forward", "divert"});
  CHECK(r.events[1].reason == "unavailable");
}

TEST_CASE("routing: the target decides in turn: CFU chains, a busy target, the limit of 5 and loops") {
  SUBCASE("a 6-hop chain is stopped at 5 diversions: NotReachable forwarding-limit") {
    fake_view v;
    // 2 -> 3 -> 4 -> 5 -> 6 -> 7 -> 8
    for (int i = 2; i <= 7; ++i) v.of("1425000000" + std::to_string(i)).unconditional = "1425000000" + std::to_string(i + 1);
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "forward", "forward", "forward", "forward", "forward", "release"});
    CHECK(r.events.back().reason == "forwarding-limit");
    CHECK(*r.events.back().status_after == call_status::not_reachable);
    CHECK(r.call.diversions.size() == 5);
    CHECK(r.call.to == "14250000007");
  }
  SUBCASE("a loop back to a number seen before: NotReachable forwarding-loop") {
    fake_view v;
    v.of(mt_num).unconditional = "14250000003";
    v.of("14250000003").unconditional = mt_num;
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "forward", "release"});
    CHECK(r.events.back().reason == "forwarding-loop");
    CHECK(told(r.events.back()) == std::set<std::string>{mo_num});
  }
  SUBCASE("forwarding to MO is a loop") {
    fake_view v;
    v.of(mt_num).unconditional = mo_num;
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "release"});
    CHECK(r.events.back().reason == "forwarding-loop");
  }
  SUBCASE("forwarded to a busy number with call waiting off and no CFB: Busy") {
    fake_view v;
    v.of(mt_num).unconditional = "14250000003";
    v.busy.insert("14250000003");
    v.of("14250000003").call_waiting = false;
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "forward", "release"});
    CHECK(*r.events.back().status_after == call_status::busy);
    CHECK(r.events.back().reason == "user-busy");
  }
  SUBCASE("forwarded to a busy number with call waiting on: invited with callWaiting, then Waiting") {
    fake_view v;
    v.of(mt_num).unconditional = "14250000003";
    v.busy.insert("14250000003");
    auto r = run_start(v);
    CHECK(r.acts() == std::vector<std::string>{"start", "forward", "divert", "waiting"});
    CHECK(r.events[2].call_waiting);
    CHECK(r.call.status == call_status::waiting);
  }
}

namespace {

// A call ringing MT (after ringing), its events folded.
call_state ringing_call(const fake_view& v) {
  auto r = run_start(v);
  REQUIRE(r.acts() == std::vector<std::string>{"start"});
  call_state c = r.call;
  command ring;
  ring.act = action::ringing;
  ring.call_id = "CALL1";
  ring.who = person("mt", mt_num);
  event e = decide(&c, ring, 2000, timers);
  REQUIRE(e.accepted());
  apply(c, e);
  return c;
}

}  // namespace

TEST_CASE("routing: MT's busy /end diverts by CFB; its devices are told Forwarded so they stop ringing") {
  fake_view v;
  call_state c = ringing_call(v);
  v.of(mt_num).busy = "14250000003";
  command end;
  end.act = action::end;
  end.call_id = "CALL1";
  end.who = person("mt", mt_num);
  end.reason = "busy";
  event e = decide(&c, end, 3000, timers);
  REQUIRE(e.accepted());
  auto follow = route(e, &c, v, timers);
  REQUIRE(follow.size() == 2);
  CHECK(e.routed);
  CHECK(*e.status_after == call_status::ringing);  // nothing ends
  CHECK(!e.arms.any());
  CHECK(!derive_notification(e));
  CHECK(to_string(follow[0].act) == std::string("forward"));
  CHECK(follow[0].reason == "user-busy");
  CHECK(!follow[0].mt_unaware);
  CHECK(told(follow[0]) == std::set<std::string>{mo_num, mt_num});
  apply(c, e);
  for (auto& f : follow) apply(c, f);
  CHECK(c.status == call_status::forwarded);
  CHECK(!c.ended_at);
  CHECK(c.to == "14250000003");
  CHECK(c.timers[timer_kind::invite] == 3000 + 30'000);  // armed again by the diversion

  SUBCASE("without CFB the busy /end ends the call Busy as before") {
    fake_view plain;
    call_state d = ringing_call(plain);
    event b = decide(&d, end, 3000, timers);
    CHECK(route(b, &d, plain, timers).empty());
    CHECK(*b.status_after == call_status::busy);
  }
}

TEST_CASE("routing: the ringing timers divert: invite by CFNRc, answer and noAnswer by CFNR") {
  fake_view v;
  auto& s = v.of(mt_num);
  s.no_answer = "14250000003";
  s.no_answer_timeout_s = 5;
  auto r = run_start(v);
  call_state c = r.call;
  REQUIRE(c.timers[timer_kind::no_answer] == 6000);
  command t;
  t.act = action::timeout;
  t.call_id = "CALL1";
  t.timer = timer_kind::no_answer;
  event e = decide(&c, t, 6000, timers);
  REQUIRE(e.accepted());
  auto follow = route(e, &c, v, timers);
  REQUIRE(follow.size() == 2);
  CHECK(e.routed);
  CHECK(follow[0].reason == "no-answer");
  apply(c, e);
  for (auto& f : follow) apply(c, f);
  CHECK(c.to == "14250000003");
  CHECK(!c.timers[timer_kind::no_answer]);  // the target forwards nowhere on no answer

  SUBCASE("noAnswer after CFNR was removed: the expiry only disarms the timer, tells nobody") {
    fake_view none;
    call_state d = r.call;
    event x = decide(&d, t, 6000, timers);
    REQUIRE(x.accepted());
    CHECK(route(x, &d, none, timers).empty());
    CHECK(!derive_notification(x));
    apply(d, x);
    CHECK(d.status == call_status::initial);
    CHECK(!d.timers[timer_kind::no_answer]);
    CHECK(d.timers[timer_kind::answer]);
  }
  SUBCASE("the invite timer with CFNRc: unavailable") {
    fake_view w;
    w.of(mt_num).not_reachable = "14250000004";
    call_state d = run_start(w).call;
    command it = t;
    it.timer = timer_kind::invite;
    event x = decide(&d, it, 1000 + 30'000, timers);
    auto f = route(x, &d, w, timers);
    REQUIRE(f.size() == 2);
    CHECK(f[0].reason == "unavailable");
    CHECK(*x.status_after == call_status::initial);
  }
}

TEST_CASE("routing: a former MT is no party: CALL_FORWARDED; the current MT answers") {
  fake_view v;
  v.of(mt_num).unconditional = "14250000003";
  call_state c = run_start(v).call;
  command ans;
  ans.act = action::connected;
  ans.call_id = "CALL1";
  ans.sdp = sdp;
  ans.who = person("mt", mt_num);
  event e = decide(&c, ans, 2000, timers);
  CHECK(e.rejected == reason_code::call_forwarded);
  CHECK(!explain_rejection(e, &c).empty());
  ans.who = person("target", "14250000003");
  e = decide(&c, ans, 2000, timers);
  REQUIRE(e.accepted());
  CHECK(e.actor_role == role::mt);
  apply(c, e);
  CHECK(c.status == call_status::connected);
  CHECK(c.dialled_number() == mt_num);
}

TEST_CASE("settings: owner only, noop when unchanged, folded and restored; defaults keep no record") {
  settings_directory dir;
  command put;
  put.act = action::settings;
  put.to = mt_num;
  put.who = person("mt", mt_num);
  number_settings s;
  s.unconditional = "14250000003";
  put.settings = s;
  event e = decide_settings(dir, put, 1000);
  REQUIRE(e.accepted());
  CHECK(!e.noop);
  CHECK(e.msisdn == mt_num);
  e.seq = 7;
  dir.apply(e);
  REQUIRE(dir.find(mt_num));
  CHECK(dir.find(mt_num)->unconditional == "14250000003");
  CHECK(dir.find(mt_num)->since == 7);
  CHECK(decide_settings(dir, put, 1001).noop);  // the same rules again

  command other = put;
  other.who = person("mo", mo_num);
  CHECK(decide_settings(dir, other, 1002).rejected == reason_code::forbidden);
  command gw = put;
  gw.who.gateway = true;
  CHECK(decide_settings(dir, gw, 1002).rejected == reason_code::forbidden);
  command bad = put;
  bad.input_error = reason_code::invalid_field;
  CHECK(decide_settings(dir, bad, 1002).rejected == reason_code::invalid_field);

  command reset = put;
  reset.settings = number_settings{};
  event r = decide_settings(dir, reset, 1003);
  REQUIRE(r.accepted());
  dir.apply(r);
  CHECK(dir.find(mt_num) == nullptr);
  CHECK(dir.of(mt_num).call_waiting);
  CHECK(dir.size() == 0);
}

TEST_CASE("call table: engaged and waiting counts follow the calls' states") {
  call_table t;
  event_seq seq = 0;
  auto fold = [&](event e) {
    e.seq = ++seq;
    t.apply(e);
  };
  fake_view v;
  auto r = run_start(v);
  for (auto e : r.events) fold(e);
  CHECK(t.engaged_count(mt_num) == 0);
  command ans;
  ans.act = action::connected;
  ans.call_id = "CALL1";
  ans.sdp = sdp;
  ans.who = person("mt", mt_num);
  fold(decide(t.find("CALL1"), ans, 2000, timers));
  CHECK(t.engaged_count(mt_num) == 1);
  CHECK(t.engaged_count(mo_num) == 1);
  // A second call to MT waits.
  v.busy.insert(mt_num);
  command s2 = start_cmd();
  s2.new_call_id = "CALL2";
  s2.from = "14250000005";
  s2.who = person("third", "14250000005");
  event st = decide(nullptr, s2, 3000, timers);
  auto follow = route(st, nullptr, v, timers);
  fold(st);
  for (auto& f : follow) fold(f);
  CHECK(t.waiting_count(mt_num) == 1);
  CHECK(t.ringing_count(mt_num) == 1);
  command end;
  end.act = action::end;
  end.call_id = "CALL2";
  end.who = person("third", "14250000005");
  fold(decide(t.find("CALL2"), end, 4000, timers));
  CHECK(t.waiting_count(mt_num) == 0);
  end.call_id = "CALL1";
  end.who = person("mo", mo_num);
  fold(decide(t.find("CALL1"), end, 4000, timers));
  CHECK(t.engaged_count(mt_num) == 0);
  CHECK(t.engaged_count(mo_num) == 0);
}

namespace {

call_state connected_call() {
  fake_view v;
  call_state c = ringing_call(v);
  command ans;
  ans.act = action::connected;
  ans.call_id = "CALL1";
  ans.sdp = sdp;
  ans.who = person("mt", mt_num);
  event e = decide(&c, ans, 2500, timers);
  REQUIRE(e.accepted());
  apply(c, e);
  return c;
}

command upgrade_cmd(action a, const std::string& sub, const std::string& number) {
  command c;
  c.act = a;
  c.call_id = "CALL1";
  c.who = person(sub, number);
  if (a == action::upgrade_to_meeting) c.meeting_uri = "https://meet.yna.invalid/m/ABC";
  return c;
}

}  // namespace

TEST_CASE("upgrade to meeting: an offer told as UpgradeToMeetingInitiated; accepted gives InProgress, Success with "
          "the URI and Terminated upgraded; rejected or timed out gives Failed and the call stays Connected") {
  fake_view v;
  call_state c = connected_call();
  const std::string mo_sdp = c.mo_sdp;
  event off = decide(&c, upgrade_cmd(action::upgrade_to_meeting, "mo", mo_num), 3000, timers);
  REQUIRE(off.accepted());
  CHECK(off.arms[timer_kind::offer] == 3000 + 15'000);
  auto n = derive_notification(off);
  REQUIRE(n);
  CHECK(n->status == "UpgradeToMeetingInitiated");
  CHECK(n->meeting_uri == "https://meet.yna.invalid/m/ABC");
  apply(c, off);
  REQUIRE(c.offer);
  CHECK(c.offer->kind == offer_kind::upgrade);
  CHECK(c.mo_sdp == mo_sdp);

  SUBCASE("accepted") {
    command acc = upgrade_cmd(action::accept_upgrade, "mt", mt_num);
    acc.accept = true;
    event e = decide(&c, acc, 4000, timers);
    REQUIRE(e.accepted());
    auto follow = route(e, &c, v, timers);
    CHECK(e.routed);
    CHECK(!derive_notification(e));
    REQUIRE(follow.size() == 3);
    CHECK(follow[0].step == "UpgradeToMeetingInProgress");
    CHECK(follow[1].step == "UpgradeToMeetingSuccess");
    CHECK(follow[1].meeting_uri == "https://meet.yna.invalid/m/ABC");
    CHECK(told(follow[1]) == std::set<std::string>{mo_num, mt_num});
    const std::string frame = encode_notification(*derive_notification(follow[1]), "");
    CHECK(frame.find("\"meetingUri\":\"https://meet.yna.invalid/m/ABC\"") != std::string::npos);
    CHECK(to_string(follow[2].act) == std::string("release"));
    CHECK(*follow[2].status_after == call_status::terminated);
    CHECK(follow[2].reason == "upgraded");
    apply(c, e);
    for (auto& f : follow) apply(c, f);
    CHECK(c.status == call_status::terminated);
    CHECK(c.meeting_uri == "https://meet.yna.invalid/m/ABC");
    CHECK(c.end_reason == std::optional<std::string>("upgraded"));
  }
  SUBCASE("rejected") {
    command acc = upgrade_cmd(action::accept_upgrade, "mt", mt_num);
    acc.accept = false;
    event e = decide(&c, acc, 4000, timers);
    auto follow = route(e, &c, v, timers);
    REQUIRE(follow.size() == 1);
    CHECK(follow[0].step == "UpgradeToMeetingFailed");
    CHECK(follow[0].reason == "rejected");
    apply(c, e);
    apply(c, follow[0]);
    CHECK(c.status == call_status::connected);
    CHECK(!c.offer);
    CHECK(c.mo_sdp == mo_sdp);
  }
  SUBCASE("the offer timer") {
    command t;
    t.act = action::timeout;
    t.call_id = "CALL1";
    t.timer = timer_kind::offer;
    event e = decide(&c, t, 3000 + 15'000, timers);
    REQUIRE(e.accepted());
    auto follow = route(e, &c, v, timers);
    CHECK(e.routed);
    REQUIRE(follow.size() == 1);
    CHECK(follow[0].step == "UpgradeToMeetingFailed");
    CHECK(follow[0].reason == "offer-timeout");
    apply(c, e);
    apply(c, follow[0]);
    CHECK(c.status == call_status::connected);
    CHECK(!c.offer);
    CHECK(!c.timers[timer_kind::offer]);
    CHECK(c.mo_sdp == mo_sdp);
  }
  SUBCASE("the offerer cannot accept its own offer; a second offer waits") {
    command acc = upgrade_cmd(action::accept_upgrade, "mo", mo_num);
    acc.accept = true;
    CHECK(decide(&c, acc, 4000, timers).rejected == reason_code::wrong_party);
    CHECK(decide(&c, upgrade_cmd(action::upgrade_to_meeting, "mt", mt_num), 4000, timers).rejected ==
          reason_code::offer_pending);
  }
}

TEST_CASE("transfer: Terminated with reason transferred and transferTargetAddress, to both parties but the causer") {
  call_state c = connected_call();
  command tr;
  tr.act = action::transfer;
  tr.call_id = "CALL1";
  tr.to = "14250000003";
  tr.who = person("mt", mt_num);
  event e = decide(&c, tr, 5000, timers);
  REQUIRE(e.accepted());
  CHECK(route(e, &c, fake_view{}, timers).empty());
  auto n = derive_notification(e);
  REQUIRE(n);
  CHECK(n->status == "Terminated");
  CHECK(n->reason == "transferred");
  const std::string frame = encode_notification(*n, "");
  CHECK(frame.find("\"transferTargetAddress\":\"tel:+14250000003\"") != std::string::npos);
  CHECK(n->is_for("mo", "mo-dev", {mo_num}));
  CHECK(!n->is_for("mt", "mt-dev", {mt_num}));  // the transferring device
  apply(c, e);
  CHECK(c.transfer_to == "14250000003");
  CHECK(c.transferred_by == role::mt);
  CHECK(c.timers[timer_kind::retire]);
}

// ---- the reactor: routing's events go in their trigger's batch, settings persist

TEST_CASE("reactor: a /start and the engine's routing events are one write, even with --max-batch 1; the "
          "settings and the forwarded call are persisted with it and fold back the same") {
  reactor_options o = reactor_test::harness::uncapped();
  o.max_batch = 1;
  reactor_test::harness h(o);
  h.start();
  command put;
  put.act = action::settings;
  put.to = "14250000002";
  put.who = actor{"b", "dev-b", {"14250000002"}, false, ""};
  number_settings s;
  s.unconditional = "14250000003";
  put.settings = s;
  put.method = "PUT";
  put.path = "/settings/14250000002";
  const reply pr = h.call(put);
  REQUIRE(pr.code == reason_code::none);
  REQUIRE(std::holds_alternative<number_settings>(pr.result));
  CHECK(std::get<number_settings>(pr.result).unconditional == "14250000003");
  const std::size_t appends = h.store.appends();
  const reply sr = h.call(reactor_test::start_cmd("F1"));
  REQUIRE(sr.code == reason_code::none);
  CHECK(render_success(sr, "").find("\"to\":\"14250000002\"") != std::string::npos);  // the number dialled
  REQUIRE(h.wait_until([&] { return h.store.events().size() == 4; }));
  CHECK(h.store.appends() == appends + 1);  // start, forward, divert: one write
  const auto ev = h.store.events();
  CHECK(to_string(ev[1].act) == std::string("start"));
  CHECK(ev[1].routed);
  CHECK(to_string(ev[2].act) == std::string("forward"));
  CHECK(to_string(ev[3].act) == std::string("divert"));
  CHECK(ev[3].seq == ev[1].seq + 2);
  const auto persisted = h.store.persisted_calls();
  REQUIRE(persisted.count("F1") == 1);
  CHECK(persisted.at("F1").to == "14250000003");
  CHECK(persisted.at("F1").dialled == "14250000002");
  REQUIRE(h.store.persisted_settings().count("14250000002") == 1);
  CHECK(h.store.persisted_settings().at("14250000002").since == ev[0].seq);
  // The log folds to what was persisted (replay, start-up).
  call_table replayed;
  for (const auto& e : ev) replayed.apply(e);
  REQUIRE(replayed.find("F1"));
  CHECK(encode_call(*replayed.find("F1")) == encode_call(persisted.at("F1")));
  CHECK(encode_settings_record(*replayed.settings().find("14250000002")) ==
        encode_settings_record(h.store.persisted_settings().at("14250000002")));
  // GET /settings: the owner only.
  std::promise<reply> got;
  REQUIRE(h.r.query_settings("14250000002", put.who, [&](reply r) { got.set_value(std::move(r)); }));
  CHECK(got.get_future().get().code == reason_code::none);
  std::promise<reply> refused;
  REQUIRE(h.r.query_settings("14250000002", reactor_test::start_cmd("x").who,
                             [&](reply r) { refused.set_value(std::move(r)); }));
  CHECK(refused.get_future().get().code == reason_code::forbidden);
}
