#include "engine/decide.hpp"
#include "engine/notify.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

// Every cell of the transition table (engine/README.md): each state × each endpoint ×
// MO / MT / stranger, accepted and rejected. The expectations below are written from the
// contract (§1, §3, §4), not computed from the engine.

namespace {

using namespace engine;
using schemas::reason_code;

constexpr const char* mo_num = "14250000001";
constexpr const char* mt_num = "14250000002";
constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

actor as(role r) {
  switch (r) {
    case role::mo: return actor{"mo-sub", "mo-dev", {mo_num}, false, ""};
    case role::mt: return actor{"mt-sub", "mt-dev", {mt_num}, false, ""};
    default: return actor{"eve-sub", "eve-dev", {"19990000000"}, false, ""};
  }
}

command cmd(action a, role r, std::optional<std::string> reason = std::nullopt) {
  command c;
  c.act = a;
  c.call_id = "CALL1";
  c.who = as(r);
  c.txn_id = "txn";
  c.method = a == action::end ? "DELETE" : "POST";
  c.path = "/x/CALL1";
  if (a != action::end) c.sdp = sdp;
  c.reason = std::move(reason);
  // Contract §10's bodies: a third number to transfer to, a meeting, an acceptance.
  if (a == action::transfer) c.to = "14250000009";
  if (a == action::upgrade_to_meeting) c.meeting_uri = "https://meet.yna.invalid/m/0123";
  if (a == action::accept_upgrade) c.accept = true;
  return c;
}

// The engine's own event (contract §10 routing), built by hand: what route() would add.
void engine_step(call_state& c, action a, call_status after, std::string to = {}) {
  event e;
  e.act = a;
  e.call_id = c.call_id;
  e.actor_role = role::engine;
  e.from = c.from;
  e.to = to.empty() ? c.to : to;
  e.diversion = c.to;
  e.reason = "unconditional";
  e.status_before = c.status;
  e.status_after = after;
  e.time = 1500;
  apply(c, e);
}

// Runs a command through decide+apply and requires it to be accepted.
void step(call_state& c, action a, role r, std::optional<std::string> reason = std::nullopt) {
  event e = decide(&c, cmd(a, r, std::move(reason)), 1000 + c.event_count);
  REQUIRE_MESSAGE(e.accepted(), "setup step ", to_string(a), " by ", to_string(r), " rejected: ",
                  schemas::to_string(e.rejected));
  apply(c, e);
}

command start_cmd(std::string to = mt_num) {
  command s;
  s.act = action::start;
  s.new_call_id = "CALL1";
  s.who = as(role::mo);
  s.from = mo_num;
  s.to = std::move(to);
  s.sdp = sdp;
  return s;
}

call_state started() {
  command s = start_cmd();
  event e = decide(nullptr, s, 1000);
  REQUIRE(e.accepted());
  call_state c;
  apply(c, e);
  return c;
}

// The states of the table, each reached through real transitions.
std::map<std::string, call_state> states() {
  std::map<std::string, call_state> m;
  auto c = started();
  m["Initial"] = c;
  { auto x = c; step(x, action::in_progress, role::mt); m["InProgress"] = x; }
  { auto x = c; step(x, action::proceeding, role::mt); m["Proceeding"] = x; }
  { auto x = c; step(x, action::ringing, role::mt); m["Ringing"] = x; }
  auto conn = c;
  step(conn, action::ringing, role::mt);
  step(conn, action::connected, role::mt);
  m["Connected"] = conn;
  { auto x = conn; step(x, action::hold, role::mo); m["Connected+hold(MO)"] = x; }
  { auto x = conn; step(x, action::renegotiate, role::mo); m["Connected+reneg(MO)"] = x; }
  auto held = conn;
  step(held, action::hold, role::mo);
  step(held, action::accept_hold, role::mt);
  m["Hold(MO)"] = held;
  { auto x = held; step(x, action::resume, role::mo); m["Hold+resume(MO)"] = x; }
  { auto x = held; step(x, action::renegotiate, role::mt); m["Hold+reneg(MT)"] = x; }
  { auto x = conn; step(x, action::end, role::mo); m["Terminated"] = x; }
  { auto x = c; step(x, action::end, role::mo); m["SessionCancelled"] = x; }
  { auto x = c; step(x, action::end, role::mt); m["Declined"] = x; }
  { auto x = c; step(x, action::end, role::mt, "busy"); m["Busy"] = x; }
  // Contract §10: a call waiting for MT, a call forwarded to MT (dialled: 14250000008), an
  // upgrade offered by MO.
  { auto x = c; engine_step(x, action::waiting, call_status::waiting); m["Waiting"] = x; }
  {
    command s = start_cmd("14250000008");
    event e = decide(nullptr, s, 1000);
    REQUIRE(e.accepted());
    call_state x;
    apply(x, e);
    engine_step(x, action::forward, call_status::forwarded, mt_num);
    engine_step(x, action::divert, call_status::forwarded);
    REQUIRE(x.to == mt_num);
    m["Forwarded"] = x;
  }
  { auto x = conn; step(x, action::upgrade_to_meeting, role::mo); m["Connected+upgrade(MO)"] = x; }
  { auto x = conn; step(x, action::transfer, role::mt); m["Transferred"] = x; }
  return m;
}

const std::vector<action> endpoints{action::in_progress, action::proceeding,  action::ringing,
                                    action::connected,   action::hold,        action::accept_hold,
                                    action::resume,      action::accept_resume, action::renegotiate,
                                    action::end,         action::transfer,    action::upgrade_to_meeting,
                                    action::accept_upgrade};

// Expected outcome per endpoint, in the order of `endpoints`, as "MO|MT".
// A status name means accepted with that resulting status; "!CODE" means rejected.
const std::map<std::string, std::vector<std::string>> table{
    {"Initial", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                 "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"InProgress", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                    "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"Proceeding", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                    "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"Ringing", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                 "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"Connected", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                   "!WRONG_PARTY|!INVALID_STATE", "Connected|Connected", "!NO_OFFER_PENDING|!NO_OFFER_PENDING",
                   "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "Connected|Connected",
                   "Terminated|Terminated", "Terminated|Terminated", "Connected|Connected", "!NO_OFFER_PENDING|!NO_OFFER_PENDING"}},
    {"Connected+hold(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                            "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                            "!OFFER_PENDING|!OFFER_PENDING", "!WRONG_PARTY|Hold", "!INVALID_STATE|!INVALID_STATE",
                            "!INVALID_STATE|!INVALID_STATE", "!OFFER_PENDING|!OFFER_PENDING",
                            "Terminated|Terminated", "Terminated|Terminated", "!OFFER_PENDING|!OFFER_PENDING", "!NO_OFFER_PENDING|!NO_OFFER_PENDING"}},
    {"Connected+reneg(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                             "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                             "!OFFER_PENDING|!OFFER_PENDING", "!NO_OFFER_PENDING|!NO_OFFER_PENDING",
                             "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                             "!OFFER_PENDING|Connected", "Terminated|Terminated", "Terminated|Terminated", "!OFFER_PENDING|!OFFER_PENDING", "!NO_OFFER_PENDING|!NO_OFFER_PENDING"}},
    {"Hold(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                  "!WRONG_PARTY|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                  "Hold|!WRONG_PARTY", "!NO_OFFER_PENDING|!NO_OFFER_PENDING", "Hold|Hold",
                  "Terminated|Terminated", "Terminated|Terminated", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"Hold+resume(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                         "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                         "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                         "!OFFER_PENDING|!WRONG_PARTY", "!WRONG_PARTY|Connected", "!OFFER_PENDING|!OFFER_PENDING",
                         "Terminated|Terminated", "Terminated|Terminated", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    {"Hold+reneg(MT)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                        "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                        "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                        "!OFFER_PENDING|!WRONG_PARTY", "!NO_OFFER_PENDING|!NO_OFFER_PENDING", "Hold|!OFFER_PENDING",
                        "Terminated|Terminated", "Terminated|Terminated", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE"}},
    // Contract §10: a waiting or forwarded call is early like Initial.
    {"Waiting", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                 "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE"}},
    {"Forwarded", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                   "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                   "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                   "SessionCancelled|Declined", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                   "!INVALID_STATE|!INVALID_STATE"}},
    {"Connected+upgrade(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                               "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                               "!OFFER_PENDING|!OFFER_PENDING", "!NO_OFFER_PENDING|!NO_OFFER_PENDING",
                               "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                               "!OFFER_PENDING|!OFFER_PENDING", "Terminated|Terminated", "Terminated|Terminated",
                               "!OFFER_PENDING|!OFFER_PENDING", "!WRONG_PARTY|Connected"}},
};

const std::vector<std::string> ended{"Terminated", "SessionCancelled", "Declined", "Busy", "Transferred"};

void check_cell(const std::string& state_name, const call_state& c, action a, role r, const std::string& want) {
  CAPTURE(state_name);
  CAPTURE(to_string(a));
  CAPTURE(to_string(r));
  CAPTURE(want);
  const event e = decide(&c, cmd(a, r), 5000);
  CHECK(e.call_id == "CALL1");
  CHECK(e.actor_role == r);
  if (want.front() == '!') {
    CHECK(!e.accepted());
    CHECK(schemas::to_string(e.rejected) == want.substr(1));
    call_state after = c;
    apply(after, e);
    CHECK(after.status == c.status);
    CHECK(after.event_count == c.event_count);
  } else {
    REQUIRE(e.accepted());
    REQUIRE(e.status_after.has_value());
    CHECK(to_string(*e.status_after) == want);
    CHECK(e.status_before == c.status);
    call_state after = c;
    apply(after, e);
    CHECK(to_string(after.status) == want);
  }
}

}  // namespace

TEST_CASE("transition table: every live state x endpoint x MO/MT/stranger") {
  const auto s = states();
  int cells = 0;
  for (const auto& [name, row] : table) {
    REQUIRE(row.size() == endpoints.size());
    const call_state& c = s.at(name);
    CHECK(to_string(c.status) == name.substr(0, name.find_first_of("+(")));
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      const auto bar = row[i].find('|');
      check_cell(name, c, endpoints[i], role::mo, row[i].substr(0, bar));
      check_cell(name, c, endpoints[i], role::mt, row[i].substr(bar + 1));
      const event e = decide(&c, cmd(endpoints[i], role::stranger), 5000);
      CHECK(e.rejected == reason_code::forbidden);
      cells += 3;
    }
  }
  CHECK(cells == 13 * 13 * 3);
}

TEST_CASE("transition table: ended calls refuse everything but end, which is a no-op") {
  const auto s = states();
  for (const auto& name : ended) {
    const call_state& c = s.at(name);
    CAPTURE(name);
    REQUIRE(is_ended(c.status));
    for (action a : endpoints) {
      for (role r : {role::mo, role::mt}) {
        if (a == action::end) {
          const event e = decide(&c, cmd(a, r), 9000);
          CHECK(e.accepted());
          CHECK(e.noop);
          CHECK(e.status_after == c.status);
          call_state after = c;
          apply(after, e);
          CHECK(after.ended_at == c.ended_at);
          CHECK(after.event_count == c.event_count);
        } else {
          check_cell(name, c, a, r, "!CALL_ENDED");
        }
      }
      CHECK(decide(&c, cmd(a, role::stranger), 9000).rejected == reason_code::forbidden);
    }
  }
}

TEST_CASE("call: MT ends before answer with reason busy gives Busy, other reasons Declined") {
  auto c = started();
  SUBCASE("busy") {
    const event e = decide(&c, cmd(action::end, role::mt, "busy"), 2000);
    CHECK(e.status_after == call_status::busy);
  }
  SUBCASE("other reason") {
    const event e = decide(&c, cmd(action::end, role::mt, "not-now"), 2000);
    CHECK(e.status_after == call_status::declined);
    apply(c, e);
    CHECK(c.end_reason == "not-now");
    CHECK(c.ended_at == 2000);
  }
  SUBCASE("MO with reason busy still cancels") {
    const event e = decide(&c, cmd(action::end, role::mo, "busy"), 2000);
    CHECK(e.status_after == call_status::session_cancelled);
  }
}

TEST_CASE("call: side effects of accepted transitions") {
  auto c = started();
  CHECK(c.from == mo_num);
  CHECK(c.to == mt_num);
  CHECK(c.mo_sdp == sdp);
  CHECK(c.mo_device == "mo-dev");
  step(c, action::connected, role::mt);
  CHECK(c.connected_at.has_value());
  CHECK(c.mt_device == "mt-dev");
  CHECK(c.mt_sdp == sdp);
  step(c, action::hold, role::mt);
  REQUIRE(c.offer.has_value());
  CHECK(c.offer->by == role::mt);
  CHECK(c.offer->kind == offer_kind::hold);
  step(c, action::accept_hold, role::mo);
  CHECK(c.status == call_status::hold);
  CHECK(c.held_by == role::mt);
  CHECK(!c.offer.has_value());
  // only the holder resumes
  CHECK(decide(&c, cmd(action::resume, role::mo), 3000).rejected == reason_code::wrong_party);
  step(c, action::resume, role::mt);
  step(c, action::accept_resume, role::mo);
  CHECK(c.status == call_status::connected);
  CHECK(!c.held_by.has_value());
  step(c, action::end, role::mt, "bye");
  CHECK(c.status == call_status::terminated);
  CHECK(c.end_reason == "bye");
  CHECK(!c.offer.has_value());
}

TEST_CASE("start: owner, stranger, idempotent repeat, input error") {
  command s;
  s.act = action::start;
  s.new_call_id = "NEW";
  s.from = mo_num;
  s.to = mt_num;
  s.sdp = sdp;
  SUBCASE("token must own from") {
    s.who = as(role::mt);
    CHECK(decide(nullptr, s, 1).rejected == reason_code::forbidden);
  }
  SUBCASE("new call") {
    s.who = as(role::mo);
    const event e = decide(nullptr, s, 1);
    CHECK(e.accepted());
    CHECK(e.call_id == "NEW");
    CHECK(e.status_after == call_status::initial);
  }
  SUBCASE("repeat with an existing call is a no-op naming the first call") {
    s.who = as(role::mo);
    const call_state first = started();
    const event e = decide(&first, s, 1);
    CHECK(e.accepted());
    CHECK(e.noop);
    CHECK(e.call_id == "CALL1");
  }
  SUBCASE("input error is recorded as a rejection") {
    s.who = as(role::mo);
    s.input_error = reason_code::invalid_sdp;
    CHECK(decide(nullptr, s, 1).rejected == reason_code::invalid_sdp);
  }
}

TEST_CASE("call: unknown call and input errors come before the party check") {
  CHECK(decide(nullptr, cmd(action::ringing, role::mt), 1).rejected == reason_code::call_not_found);
  auto c = started();
  auto bad = cmd(action::connected, role::stranger);
  bad.input_error = reason_code::missing_field;
  CHECK(decide(&c, bad, 1).rejected == reason_code::missing_field);
}

TEST_CASE("call: a token owning both numbers acts for the side the action needs") {
  auto c = started();
  actor both{"both", "d", {mo_num, mt_num}, false, ""};
  auto x = cmd(action::ringing, role::mt);
  x.who = both;
  event e = decide(&c, x, 2);
  CHECK(e.accepted());
  CHECK(e.actor_role == role::mt);
  x.act = action::end;
  e = decide(&c, x, 2);
  CHECK(e.status_after == call_status::session_cancelled);
}

TEST_CASE("transition table: a former MT (the call was forwarded away from it) gets CALL_FORWARDED everywhere") {
  const auto s = states();
  const call_state& c = s.at("Forwarded");
  for (action a : endpoints) {
    CAPTURE(to_string(a));
    command x = cmd(a, role::mt);
    x.who = actor{"former-sub", "former-dev", {"14250000008"}, false, ""};
    const event e = decide(&c, x, 5000);
    CHECK(e.rejected == reason_code::call_forwarded);
    CHECK(!explain_rejection(e, &c).empty());
  }
}

TEST_CASE("transfer: the remaining party takes it up with /start transferOf, to the target only, in time") {
  const auto s = states();
  const call_state& old = s.at("Transferred");  // MT transferred to 14250000009; MO remains
  REQUIRE(old.transferred_by == role::mt);
  REQUIRE(old.transfer_to == "14250000009");
  REQUIRE(old.end_reason == std::optional<std::string>("transferred"));
  const timer_settings t{};  // offer timer 15 s
  auto take_up = [&](std::string from, std::string to, actor who, epoch_ms at, const call_state* called) {
    command c = start_cmd(std::move(to));
    c.from = std::move(from);
    c.who = std::move(who);
    c.new_call_id = "CALL2";
    c.transfer_of = "CALL1";
    start_limits l;
    l.transferred = called;
    return decide(nullptr, c, at, t, l);
  };
  const epoch_ms when = *old.ended_at;
  event ok = take_up(mo_num, "14250000009", as(role::mo), when + 1000, &old);
  REQUIRE(ok.accepted());
  CHECK(ok.transfer_of == "CALL1");
  CHECK(ok.diversion == mt_num);  // the invitation's diversionAddress: who transferred
  call_state nc;
  apply(nc, ok);
  CHECK(nc.transfer_of == "CALL1");
  // A device connecting later is invited as the live invitation said: diversionAddress MT.
  CHECK(invitation_for(nc).diversion == mt_num);
  CHECK(derive_notification(ok)->diversion == mt_num);
  CHECK(take_up(mo_num, "14250000007", as(role::mo), when + 1000, &old).rejected == reason_code::invalid_field);
  CHECK(take_up(mt_num, "14250000009", as(role::mt), when + 1000, &old).rejected == reason_code::wrong_party);
  CHECK(take_up(mo_num, "14250000009", as(role::mo), when + 16'000, &old).rejected == reason_code::invalid_state);
  CHECK(take_up(mo_num, "14250000009", as(role::mo), when + 1000, nullptr).rejected == reason_code::call_not_found);
  const call_state& live = s.at("Connected");
  CHECK(take_up(mo_num, "14250000009", as(role::mo), when + 1000, &live).rejected == reason_code::invalid_state);
  // A transfer to a party of the call, or without a target, is refused.
  const call_state& conn = s.at("Connected");
  command to_other = cmd(action::transfer, role::mo);
  to_other.to = mt_num;
  CHECK(decide(&conn, to_other, 5000).rejected == reason_code::invalid_field);
  to_other.to = mo_num;
  CHECK(decide(&conn, to_other, 5000).rejected == reason_code::invalid_field);
}
