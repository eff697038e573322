#include "engine/decide.hpp"

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
    case role::mo: return actor{"mo-sub", "mo-dev", {mo_num}};
    case role::mt: return actor{"mt-sub", "mt-dev", {mt_num}};
    default: return actor{"eve-sub", "eve-dev", {"19990000000"}};
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
  return c;
}

// Runs a command through decide+apply and requires it to be accepted.
void step(call_state& c, action a, role r, std::optional<std::string> reason = std::nullopt) {
  event e = decide(&c, cmd(a, r, std::move(reason)), 1000 + c.event_count);
  REQUIRE_MESSAGE(e.accepted(), "setup step ", to_string(a), " by ", to_string(r), " rejected: ",
                  schemas::to_string(e.rejected));
  apply(c, e);
}

call_state started() {
  command s;
  s.act = action::start;
  s.new_call_id = "CALL1";
  s.who = as(role::mo);
  s.from = mo_num;
  s.to = mt_num;
  s.sdp = sdp;
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
  return m;
}

const std::vector<action> endpoints{action::in_progress, action::proceeding,  action::ringing,
                                    action::connected,   action::hold,        action::accept_hold,
                                    action::resume,      action::accept_resume, action::renegotiate,
                                    action::end};

// Expected outcome per endpoint, in the order of `endpoints`, as "MO|MT".
// A status name means accepted with that resulting status; "!CODE" means rejected.
const std::map<std::string, std::vector<std::string>> table{
    {"Initial", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                 "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "SessionCancelled|Declined"}},
    {"InProgress", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                    "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "SessionCancelled|Declined"}},
    {"Proceeding", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                    "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                    "!INVALID_STATE|!INVALID_STATE", "SessionCancelled|Declined"}},
    {"Ringing", {"!WRONG_PARTY|InProgress", "!WRONG_PARTY|Proceeding", "!WRONG_PARTY|Ringing",
                 "!WRONG_PARTY|Connected", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                 "SessionCancelled|Declined"}},
    {"Connected", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                   "!WRONG_PARTY|!INVALID_STATE", "Connected|Connected", "!NO_OFFER_PENDING|!NO_OFFER_PENDING",
                   "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "Connected|Connected",
                   "Terminated|Terminated"}},
    {"Connected+hold(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                            "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                            "!OFFER_PENDING|!OFFER_PENDING", "!WRONG_PARTY|Hold", "!INVALID_STATE|!INVALID_STATE",
                            "!INVALID_STATE|!INVALID_STATE", "!OFFER_PENDING|!OFFER_PENDING",
                            "Terminated|Terminated"}},
    {"Connected+reneg(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                             "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                             "!OFFER_PENDING|!OFFER_PENDING", "!NO_OFFER_PENDING|!NO_OFFER_PENDING",
                             "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                             "!OFFER_PENDING|Connected", "Terminated|Terminated"}},
    {"Hold(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                  "!WRONG_PARTY|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                  "Hold|!WRONG_PARTY", "!NO_OFFER_PENDING|!NO_OFFER_PENDING", "Hold|Hold",
                  "Terminated|Terminated"}},
    {"Hold+resume(MO)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                         "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                         "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                         "!OFFER_PENDING|!WRONG_PARTY", "!WRONG_PARTY|Connected", "!OFFER_PENDING|!OFFER_PENDING",
                         "Terminated|Terminated"}},
    {"Hold+reneg(MT)", {"!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                        "!WRONG_PARTY|!INVALID_STATE", "!WRONG_PARTY|!INVALID_STATE",
                        "!INVALID_STATE|!INVALID_STATE", "!INVALID_STATE|!INVALID_STATE",
                        "!OFFER_PENDING|!WRONG_PARTY", "!NO_OFFER_PENDING|!NO_OFFER_PENDING", "Hold|!OFFER_PENDING",
                        "Terminated|Terminated"}},
};

const std::vector<std::string> ended{"Terminated", "SessionCancelled", "Declined", "Busy"};

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
  CHECK(cells == 10 * 10 * 3);
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
  actor both{"both", "d", {mo_num, mt_num}};
  auto x = cmd(action::ringing, role::mt);
  x.who = both;
  event e = decide(&c, x, 2);
  CHECK(e.accepted());
  CHECK(e.actor_role == role::mt);
  x.act = action::end;
  e = decide(&c, x, 2);
  CHECK(e.status_after == call_status::session_cancelled);
}
