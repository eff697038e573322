// yna-tool replay and verify over logs the real engine wrote (contract §6, §8): the fold
// of the whole log matches what the test did and the engine's persisted call state;
// --until stops at a seq or a time and shows the calls as they were then; a state that
// disagrees with the log is found and named.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>

using namespace integration;
using namespace integration::tool;

namespace {

// 17 requests, so 17 events, on four calls (see the comments for their seqs).
struct scripted_log {
  party a, b, c, stranger;
  std::string id1, id2, id3, id4;
  std::int64_t mid_ms = 0;  // a moment between seq 7 and seq 8
};

scripted_log write_scripted_log(const engine_process& eng, caller& k) {
  scripted_log s;
  s.a = new_party(eng, "a-phone");
  s.b = new_party(eng, "b-phone");
  s.c = new_party(eng, "c-phone");
  s.stranger = new_party(eng, "s-phone");
  s.id1 = k.start(s.a, s.b, sdp("a1"));  // 1
  k.act("ringing", s.id1, s.b);           // 2
  k.act("connected", s.id1, s.b, sdp("b1"));  // 3
  k.act("hold", s.id1, s.a, sdp("a-hold"));   // 4
  k.act("acceptHold", s.id1, s.b, sdp("b-hold"));  // 5: Hold, held by a
  k.act("resume", s.id1, s.a, sdp("a-resume"));    // 6
  k.act("acceptResume", s.id1, s.b, sdp("b-resume"));  // 7: Connected
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  s.mid_ms = now_ms();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  k.end(s.id1, s.a);                                        // 8: Terminated
  s.id2 = k.start(s.a, s.c, sdp("a2"), "corr-2");           // 9
  const std::string again = k.start(s.a, s.c, sdp("a2"), "corr-2");  // 10: noop
  CHECK(again == s.id2);
  k.act("ringing", s.id2, s.c);                             // 11
  k.end(s.id2, s.a);                                        // 12: SessionCancelled
  s.id3 = k.start(s.c, s.b, sdp("c3"));                     // 13
  k.act("connected", s.id3, s.b, sdp("b3"));                // 14: Connected, stays
  s.id4 = k.start(s.b, s.a, sdp("b4"));                     // 15: Initial, stays
  k.act("hold", s.id4, s.b, sdp("b4-hold"));                // 16: 400 INVALID_STATE
  k.act("ringing", s.id1, s.stranger);                      // 17: 403 FORBIDDEN
  REQUIRE(k.steps.size() == 17);
  for (std::size_t i = 0; i < 15; ++i) CHECK_MESSAGE(k.steps[i].status == 200, "step ", i + 1, ": ", k.steps[i].body);
  CHECK(k.steps[15].status == 400);
  CHECK(k.steps[16].status == 403);
  return s;
}

void check_whole_replay(const engine_process& eng) {
  const auto r = run(eng, "--json replay");
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  CHECK(json_int(r.out, "/events") == 17);
  CHECK(json_int(r.out, "/lastSeq") == 17);
  CHECK(json_int(r.out, "/calls") == 4);
  CHECK(json_int(r.out, "/active") == 2);
  CHECK(json_int(r.out, "/statuses/Terminated") == 1);
  CHECK(json_int(r.out, "/statuses/SessionCancelled") == 1);
  CHECK(json_int(r.out, "/statuses/Connected") == 1);
  CHECK(json_int(r.out, "/statuses/Initial") == 1);
  CHECK(json_object_size(r.out, "/statuses") == 4);
  CHECK(json_int(r.out, "/rejected") == 2);
  CHECK(json_int(r.out, "/noop") == 1);
  CHECK(json_bool(r.out, "/ok") == true);
  CHECK(json_bool(r.out, "/state/compared") == true);
  CHECK(json_bool(r.out, "/state/ok") == true);
  CHECK(json_int(r.out, "/state/seq") == 17);  // written with every batch
  CHECK(json_int(r.out, "/state/calls") == 4);  // all in memory: ended ones retire after an hour
  CHECK(json_int(r.out, "/retired") == 0);
  CHECK_FALSE(json_has(r.out, "/broken"));
  CHECK_FALSE(json_has(r.out, "/callStates"));
}

}  // namespace

TEST_CASE("tool replay: the fold of the engine's log is what the test did and agrees with the persisted state") {
  engine_process eng;
  caller k(eng);
  const scripted_log s = write_scripted_log(eng, k);

  SUBCASE("while the engine runs, and after it stopped") {
    check_whole_replay(eng);
    REQUIRE(eng.stop().clean());
    check_whole_replay(eng);
  }

  SUBCASE("human output") {
    const auto r = run(eng, "replay");
    INFO(r.out, r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("replayed 17 events (seq 1..17 of 17)") != std::string::npos);
    CHECK(r.out.find("calls: 4 (2 not ended, 0 retired from memory); events: 2 rejected, 1 noop") != std::string::npos);
    CHECK(r.out.find("persisted state: seq 17 agrees with the log (4 calls, compared in ") != std::string::npos);
    CHECK(r.err.empty());  // no progress when stderr is not a terminal
  }

  SUBCASE("--until SEQ: the calls not ended at that seq, as they were") {
    const auto r = run(eng, "--json replay --until 5");
    INFO(r.out, r.err);
    CHECK(r.code == 0);
    CHECK(json_int(r.out, "/events") == 5);
    CHECK(json_int(r.out, "/lastSeq") == 5);
    CHECK(json_int(r.out, "/until/seq") == 5);
    CHECK(json_str(r.out, "/callStates/0/callId") == s.id1);
    CHECK(json_str(r.out, "/callStates/0/status") == "Hold");
    CHECK(json_str(r.out, "/callStates/0/heldBy") == s.a.number);
    CHECK(json_str(r.out, "/callStates/0/sdp/from") == sdp("a-hold"));
    CHECK(json_str(r.out, "/callStates/0/sdp/to") == sdp("b-hold"));
    CHECK(json_int(r.out, "/callStates/0/connectedAt") >= k.steps[2].before_ms);
    CHECK(json_int(r.out, "/callStates/0/connectedAt") <= k.steps[2].after_ms);
    CHECK_FALSE(json_has(r.out, "/callStates/0/endedAt"));
    CHECK_FALSE(json_has(r.out, "/callStates/1"));
    CHECK(json_bool(r.out, "/state/compared") == false);  // seq 17 not reached
  }

  SUBCASE("--until SEQ in the human table") {
    const auto r = run(eng, "replay --until 14");
    INFO(r.out, r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("until seq 14: the calls as they were after seq 14") != std::string::npos);
    CHECK(r.out.find(s.id3) != std::string::npos);  // Connected
    CHECK(r.out.find(s.id1) == std::string::npos);  // ended at 8
    CHECK(r.out.find(s.id2) == std::string::npos);  // ended at 12
    CHECK(r.out.find("persisted state: seq 17 not reached") != std::string::npos);
  }

  SUBCASE("--until TIME stops before the first later event") {
    const auto r = run(eng, "--json replay --until @" + std::to_string(s.mid_ms));
    INFO(r.out, r.err);
    CHECK(r.code == 0);
    CHECK(json_int(r.out, "/events") == 7);
    CHECK(json_int(r.out, "/until/time") == s.mid_ms);
    CHECK(json_str(r.out, "/callStates/0/status") == "Connected");
    CHECK_FALSE(json_has(r.out, "/callStates/0/heldBy"));
    CHECK_FALSE(json_has(r.out, "/callStates/1"));

    const auto before = run(eng, "--json replay --until 2000-01-01T00:00:00Z");
    CHECK(before.code == 0);
    CHECK(json_int(before.out, "/events") == 0);
    const auto after = run(eng, "--json replay --until '2999-12-31 23:59'");
    CHECK(after.code == 0);
    CHECK(json_int(after.out, "/events") == 17);
  }

  SUBCASE("--all and --call") {
    const auto all = run(eng, "--json replay --until 12 --all");
    INFO(all.out, all.err);
    CHECK(all.code == 0);
    CHECK(json_str(all.out, "/callStates/0/status") == "Terminated");
    CHECK(json_int(all.out, "/callStates/0/endedAt") >= k.steps[7].before_ms);
    CHECK(json_int(all.out, "/callStates/0/endedAt") <= k.steps[7].after_ms);
    CHECK(json_str(all.out, "/callStates/1/status") == "SessionCancelled");
    CHECK(json_str(all.out, "/callStates/1/clientCorrelator") == "corr-2");
    CHECK_FALSE(json_has(all.out, "/callStates/2"));

    const auto one = run(eng, "replay --call " + s.id3 + " --json");
    INFO(one.out, one.err);
    CHECK(one.code == 0);
    CHECK(json_str(one.out, "/callStates/0/status") == "Connected");
    CHECK(json_str(one.out, "/callStates/0/sdp/to") == sdp("b3"));
    CHECK_FALSE(json_has(one.out, "/callStates/1"));

    CHECK(run(eng, "replay --call 0123456789ABCDEF0123456789ABCDEF").code == 4);
  }

  SUBCASE("usage errors exit 2") {
    CHECK(run(eng, "replay --until yesterday-ish").code == 2);
    CHECK(run(eng, "replay --no-such-flag").code == 2);
  }

  SUBCASE("verify agrees") {
    const auto r = run(eng, "--json verify");
    INFO(r.out, r.err);
    CHECK(r.code == 0);
    CHECK(json_int(r.out, "/checked") == 17);
    CHECK(json_int(r.out, "/state/seq") == 17);
    CHECK(json_int(r.out, "/state/calls") == 4);
  }
}

TEST_CASE("tool replay/verify: a persisted state that disagrees with the log is named") {
  engine_process eng;
  caller k(eng);
  const party a = new_party(eng, "a-phone"), b = new_party(eng, "b-phone");
  const std::string id = k.start(a, b, sdp("a"));
  k.act("connected", id, b, sdp("b"));
  k.end(id, b);
  for (const auto& st : k.steps) REQUIRE(st.status == 200);
  REQUIRE(eng.stop().clean());

  {
    raw_db db(eng.data_dir());
    std::string bytes = db.get_key("calls", id).value();
    const std::string from = "\"status\":\"Terminated\"";
    const auto at = bytes.find(from);
    REQUIRE(at != std::string::npos);
    SUBCASE("a changed status") {
      bytes.replace(at, from.size(), "\"status\":\"Connected\"");
      db.put_key("calls", id, bytes);
    }
    SUBCASE("a call the log does not have") {
      std::string stranger = bytes;
      stranger.replace(stranger.find(id), id.size(), "FEEDFACEFEEDFACEFEEDFACEFEEDFACE");
      db.put_key("calls", "FEEDFACEFEEDFACEFEEDFACEFEEDFACE", stranger);
    }
  }

  const auto r = run(eng, "--json replay");
  INFO(r.out, r.err);
  CHECK(r.code == 1);
  CHECK(json_int(r.out, "/state/seq") == 3);
  CHECK(json_bool(r.out, "/ok") == false);
  CHECK(json_bool(r.out, "/state/ok") == false);
  CHECK(json_int(r.out, "/state/differingCalls") == 1);
  const std::string problem = json_str(r.out, "/state/problem").value_or("");
  CHECK((problem.find("call " + id + " differs: status: persisted \"Connected\", log \"Terminated\"") !=
             std::string::npos ||
         problem == "call FEEDFACEFEEDFACEFEEDFACEFEEDFACE is in the persisted state but not in the log"));

  const auto human = run(eng, "replay");
  CHECK(human.code == 1);
  CHECK(human.out.find("MISMATCH: the persisted state at seq 3") != std::string::npos);

  const auto v = run(eng, "verify");
  INFO(v.out, v.err);
  CHECK(v.code == 1);
  CHECK(v.out.find("BROKEN: the persisted state at seq 3 disagrees with the log") != std::string::npos);
  CHECK(run(eng, "verify --no-state").code == 0);  // the events themselves are intact
}
