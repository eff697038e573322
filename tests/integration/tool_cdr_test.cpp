// yna-tool cdr over logs the real engine wrote: one row per call with the right final
// status, end reason, who ended it, start/answer/end times and duration, for every
// ending of contract §4: the party-caused ones and the engine's timers (§7). Times are
// checked against wall-clock brackets around the requests the test made.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using namespace integration;
using namespace integration::tool;

namespace {

// The JSON line of `id` in `cdr --json` output; "" when absent.
std::string row_of(const std::string& out, const std::string& id) {
  for (const auto& l : lines(out))
    if (json_str(l, "/callId") == id) return l;
  return {};
}

std::string iso(std::int64_t ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> tp{milliseconds{ms}};
  const auto d = floor<days>(tp);
  const year_month_day ymd{d};
  const hh_mm_ss hms{tp - d};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return buf;
}

// "1.234" from 1234 ms.
std::string seconds(std::int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return buf;
}

// What a row must say. Brackets are the steps whose wall-clock window holds the time.
struct expect_row {
  std::string status;
  std::optional<std::string> reason;  // nullopt: null / empty
  std::string ended_by;               // "" for a call that has not ended
  const step* started = nullptr;
  const step* answered = nullptr;  // nullptr: never answered
  const step* ended = nullptr;     // nullptr: ended by the engine or not ended
};

void check_row(const std::string& row, const expect_row& w) {
  INFO("row: ", row);
  REQUIRE(!row.empty());
  CHECK(json_str(row, "/finalStatus") == w.status);
  CHECK(json_str(row, "/endReason") == w.reason);
  CHECK(json_str(row, "/endedBy") == (w.ended_by.empty() ? std::nullopt : std::optional<std::string>(w.ended_by)));
  const auto start = json_int(row, "/start");
  CHECK(start >= w.started->before_ms);
  CHECK(start <= w.started->after_ms);
  const auto answer = json_int(row, "/answer"), end = json_int(row, "/end");
  if (w.answered) {
    CHECK(answer >= w.answered->before_ms);
    CHECK(answer <= w.answered->after_ms);
  } else {
    CHECK_FALSE(answer.has_value());
    CHECK(json_int(row, "/durationMs") == 0);
  }
  if (w.ended) {
    CHECK(end >= w.ended->before_ms);
    CHECK(end <= w.ended->after_ms);
  }
  if (w.ended_by.empty()) CHECK_FALSE(end.has_value());
  if (answer && end) CHECK(json_int(row, "/durationMs") == *end - *answer);
}

// The engine's flags with every timer long but the ones given (seconds).
// (Every write persists the calls it changed, so replay compares the timers' effects with
// the engine's.)
std::vector<std::string> timers(std::string invite = "300", std::string answer = "300",
                                std::string max_duration = "3000", std::string offer = "300") {
  return {"--invite-timeout", invite, "--answer-timeout", answer, "--offer-timeout", offer,
          "--max-call-duration", max_duration};
}

// Polls `cdr --json` until the call has a row (an engine timer ended it), 20 s at most.
std::string await_row(const engine_process& eng, const std::string& id) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    const auto r = run(eng, "--json cdr");
    REQUIRE(r.code == 0);
    if (auto row = row_of(r.out, id); !row.empty()) return row;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {};
}

// The fold of the log agrees with the engine's persisted state after the expiry.
void check_replay(const engine_process& eng) {
  const auto r = run(eng, "--json replay");
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  CHECK(json_bool(r.out, "/state/compared") == true);
  CHECK(json_bool(r.out, "/state/ok") == true);
  CHECK(json_int(r.out, "/state/seq") == json_int(r.out, "/lastSeq"));
}

}  // namespace

TEST_CASE("tool cdr: the party-caused endings of contract §4") {
  engine_process eng(timers());
  caller k(eng);
  auto p = [&](const char* dev) { return new_party(eng, dev); };
  const party a = p("a"), b = p("b"), c = p("c"), d = p("d"), e = p("e"), f = p("f");

  const std::string t1 = k.start(a, b, sdp("1"));  // Terminated by MO
  const step t1_start = k.steps.back();
  k.act("ringing", t1, b);
  const step t1_answer = k.act("connected", t1, b, sdp("1b"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const step t1_end = k.end(t1, a);
  k.end(t1, b, "late");  // a second end changes nothing (noop)

  const std::string t2 = k.start(c, d, sdp("2"));  // Terminated by MT, from Hold
  const step t2_start = k.steps.back();
  const step t2_answer = k.act("connected", t2, d, sdp("2d"));
  k.act("hold", t2, c, sdp("2h"));
  k.act("acceptHold", t2, d, sdp("2dh"));
  const step t2_end = k.end(t2, d, "bye");

  const std::string cancelled = k.start(e, f, sdp("3"));  // MO ends before the answer
  const step c_start = k.steps.back();
  k.act("ringing", cancelled, f);
  const step c_end = k.end(cancelled, e);

  const std::string declined = k.start(a, c, sdp("4"));  // MT ends, a reason other than busy
  const step d_start = k.steps.back();
  k.act("ringing", declined, c);
  const step d_end = k.end(declined, c, "no, thanks");

  const std::string busy = k.start(b, e, sdp("5"));  // MT ends with reason busy
  const step b_start = k.steps.back();
  const step b_end = k.end(busy, e, "busy");

  const std::string active = k.start(d, f, sdp("6"));  // still Connected
  const step a_start = k.steps.back();
  const step a_answer = k.act("connected", active, f, sdp("6f"));
  for (const auto& s : k.steps) REQUIRE_MESSAGE(s.status == 200, s.body);

  const auto r = run(eng, "--json cdr");
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(lines(r.out).size() == 5);  // ended calls only
  check_row(row_of(r.out, t1), {"Terminated", std::nullopt, "MO", &t1_start, &t1_answer, &t1_end});
  CHECK(json_int(row_of(r.out, t1), "/durationMs") >= 50);
  check_row(row_of(r.out, t2), {"Terminated", "bye", "MT", &t2_start, &t2_answer, &t2_end});
  check_row(row_of(r.out, cancelled), {"SessionCancelled", std::nullopt, "MO", &c_start, nullptr, &c_end});
  check_row(row_of(r.out, declined), {"Declined", "no, thanks", "MT", &d_start, nullptr, &d_end});
  check_row(row_of(r.out, busy), {"Busy", "busy", "MT", &b_start, nullptr, &b_end});
  CHECK(row_of(r.out, active).empty());
  // In start order.
  const auto ls = lines(r.out);
  CHECK(json_str(ls.front(), "/callId") == t1);
  CHECK(json_str(ls.back(), "/callId") == busy);

  SUBCASE("--all adds the calls that have not ended") {
    const auto all = run(eng, "--json cdr --all");
    CHECK(lines(all.out).size() == 6);
    check_row(row_of(all.out, active), {"Connected", std::nullopt, "", &a_start, &a_answer, nullptr});
  }

  SUBCASE("CSV: the contract's columns, quoted where needed, the same values") {
    const auto csv = run(eng, "cdr");
    INFO(csv.out, csv.err);
    REQUIRE(csv.code == 0);
    const auto rows = lines(csv.out);
    REQUIRE(rows.size() == 6);
    CHECK(rows[0] == "callId,from,to,start,answer,end,duration,finalStatus,endReason,endedBy,dialled,diversions,"
                     "transferredTo,transferOf,meetingUri");
    const std::string j1 = row_of(r.out, t1);
    CHECK(rows[1] == t1 + "," + a.number + "," + b.number + "," + iso(*json_int(j1, "/start")) + "," +
                         iso(*json_int(j1, "/answer")) + "," + iso(*json_int(j1, "/end")) + "," +
                         seconds(*json_int(j1, "/durationMs")) + ",Terminated,,MO," + b.number + ",,,,");
    const std::string jd = row_of(r.out, declined);
    CHECK(rows[4] == declined + "," + a.number + "," + c.number + "," + iso(*json_int(jd, "/start")) + ",," +
                         iso(*json_int(jd, "/end")) + ",0.000,Declined,\"no, thanks\",MT," + c.number + ",,,,");
  }

  SUBCASE("--since/--until select on the start time") {
    const auto later = run(eng, "--json cdr --since @" + std::to_string(d_start.before_ms));
    CHECK(lines(later.out).size() == 2);  // declined, busy
    CHECK(!row_of(later.out, declined).empty());
    const auto earlier = run(eng, "--json cdr --until @" + std::to_string(t2_start.after_ms));
    CHECK(lines(earlier.out).size() == 2);  // t1, t2
    CHECK(!row_of(earlier.out, t2).empty());
  }
}

TEST_CASE("tool cdr: the engine-caused endings (timers)") {
  SUBCASE("NotReachable: no MT progress within the invite timeout") {
    engine_process eng(timers("0.3"));
    caller k(eng);
    const party a = new_party(eng, "a"), b = new_party(eng, "b");
    const std::string id = k.start(a, b, sdp("a"));
    REQUIRE(!id.empty());
    const std::string row = await_row(eng, id);
    check_row(row, {"NotReachable", "invite-timeout", "engine", &k.steps[0], nullptr, nullptr});
    CHECK(json_int(row, "/end") >= *json_int(row, "/start") + 300);
    const auto t = run(eng, "timeline " + id);
    CHECK(t.out.find("engine") != std::string::npos);
    CHECK(t.out.find("timers: expired invite") != std::string::npos);
    CHECK(t.out.find("=> status NotReachable reason=invite-timeout") != std::string::npos);
    check_replay(eng);
  }

  SUBCASE("NoAnswer: ringing, not answered within the answer timeout") {
    engine_process eng(timers("300", "0.6"));
    caller k(eng);
    const party a = new_party(eng, "a"), b = new_party(eng, "b");
    const std::string id = k.start(a, b, sdp("a"));
    REQUIRE(k.act("ringing", id, b).status == 200);
    const std::string row = await_row(eng, id);
    check_row(row, {"NoAnswer", "answer-timeout", "engine", &k.steps[0], nullptr, nullptr});
    CHECK(json_int(row, "/end") >= *json_int(row, "/start") + 600);
    check_replay(eng);
  }

  SUBCASE("Terminated, reason max-duration") {
    engine_process eng(timers("300", "300", "0.5"));
    caller k(eng);
    const party a = new_party(eng, "a"), b = new_party(eng, "b");
    const std::string id = k.start(a, b, sdp("a"));
    const step answer = k.act("connected", id, b, sdp("b"));
    REQUIRE(answer.status == 200);
    const std::string row = await_row(eng, id);
    check_row(row, {"Terminated", "max-duration", "engine", &k.steps[0], &answer, nullptr});
    CHECK(json_int(row, "/durationMs") >= 500);
    const auto csv = run(eng, "cdr");
    CHECK(csv.out.find(",Terminated,max-duration,engine") != std::string::npos);
    check_replay(eng);
  }

  SUBCASE("an offer withdrawn by its timer is not an ending") {
    engine_process eng(timers("300", "300", "3000", "0.3"));
    caller k(eng);
    const party a = new_party(eng, "a"), b = new_party(eng, "b");
    const std::string id = k.start(a, b, sdp("a"));
    const step answer = k.act("connected", id, b, sdp("b"));
    REQUIRE(k.act("hold", id, a, sdp("a-hold")).status == 200);
    std::string tl;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (tl.find("expired offer") == std::string::npos && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      tl = run(eng, "timeline " + id).out;
    }
    INFO(tl);
    CHECK(tl.find("timeout    accepted  Connected -> Connected") != std::string::npos);
    CHECK(tl.find("reason=offer-timeout") != std::string::npos);
    const auto r = run(eng, "--json cdr --all");
    check_row(row_of(r.out, id), {"Connected", std::nullopt, "", &k.steps[0], &answer, nullptr});
    CHECK(run(eng, "--json cdr").out.empty());
    const auto rp = run(eng, "--json replay --call " + id);
    CHECK(json_str(rp.out, "/callStates/0/sdp/from") == sdp("a"));  // the withdrawn offer's SDP is undone
    CHECK_FALSE(json_has(rp.out, "/callStates/0/pendingOffer"));
    check_replay(eng);
  }
}
