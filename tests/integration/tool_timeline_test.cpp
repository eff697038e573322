// yna-tool timeline, audit and export over logs the real engine wrote (contract §8):
// each output is checked against what the test did: its requests (with transaction
// ids the test chose), the answers it got, and wall-clock brackets around each request.
#include "tests/integration/tool_support.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>

#include "schemas/digest.hpp"

using namespace integration;
using namespace integration::tool;

namespace {

// Seqs of the JSON lines in `out` (records as stored), checking each against the
// request the test made at that seq.
std::set<std::int64_t> seqs_of(const std::string& out, const std::vector<step>& steps) {
  std::set<std::int64_t> s;
  for (const auto& l : lines(out)) {
    const auto seq = json_int(l, "/seq");
    REQUIRE(seq.has_value());
    REQUIRE(*seq >= 1);
    REQUIRE(*seq <= static_cast<std::int64_t>(steps.size()));
    CHECK(json_str(l, "/txn") == steps[static_cast<std::size_t>(*seq - 1)].txn);
    s.insert(*seq);
  }
  return s;
}

void gap() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

}  // namespace

TEST_CASE("tool timeline: each event of one call, what it did, and the notifications it caused") {
  engine_process eng;
  caller k(eng);
  const party mo = new_party(eng, "mo-phone"), mt = new_party(eng, "mt-phone");
  const party x = new_party(eng, "x-phone"), y = new_party(eng, "y-phone");
  const std::string id = k.start(mo, mt, sdp("mo-offer"));   // 1
  const std::string other = k.start(x, y, sdp("x"));         // 2 (another call)
  k.act("ringing", id, mt);                                   // 3
  k.act("connected", id, mt, sdp("mt-answer"));               // 4
  k.act("ringing", other, y);                                 // 5
  k.act("hold", id, mo, sdp("mo-hold"));                      // 6
  k.act("acceptHold", id, mo, sdp("mo-wrong"));               // 7: the offerer: WRONG_PARTY
  k.act("acceptHold", id, mt, sdp("mt-hold"));                // 8
  k.end(id, mt, "bye");                                       // 9: Terminated
  k.end(id, mo);                                              // 10: already ended: noop
  REQUIRE(k.steps.size() == 10);
  CHECK(k.steps[6].status == 400);
  CHECK(reason_code_of(k.steps[6].body) == "WRONG_PARTY");

  // What each event of `id` must show: seq, type, actor role and device, before, after.
  struct want {
    int seq;
    const char* type;
    const char* role;
    const char* device;
    const char* before;
    const char* after;
  };
  const std::vector<want> expected{
      {1, "start", "MO", "mo-phone", nullptr, "Initial"},
      {3, "ringing", "MT", "mt-phone", "Initial", "Ringing"},
      {4, "connected", "MT", "mt-phone", "Ringing", "Connected"},
      {6, "hold", "MO", "mo-phone", "Connected", "Connected"},
      {7, "acceptHold", "MO", "mo-phone", "Connected", nullptr},
      {8, "acceptHold", "MT", "mt-phone", "Connected", "Hold"},
      {9, "end", "MT", "mt-phone", "Hold", "Terminated"},
      {10, "end", "MO", "mo-phone", "Terminated", "Terminated"},
  };

  SUBCASE("--json: the stored records, in order, with the notification frames") {
    const auto r = run(eng, "--json timeline " + id);
    INFO(r.out, r.err);
    REQUIRE(r.code == 0);
    CHECK(json_str(r.out, "/callId") == id);
    CHECK_FALSE(json_has(r.out, "/events/8"));
    for (std::size_t j = 0; j < expected.size(); ++j) {
      const want& w = expected[j];
      const step& s = k.steps[static_cast<std::size_t>(w.seq - 1)];
      const std::string e = "/events/" + std::to_string(j);
      INFO("timeline event ", j, " (seq ", w.seq, ")");
      CHECK(json_int(r.out, e + "/record/seq") == w.seq);
      CHECK(json_str(r.out, e + "/record/type") == w.type);
      CHECK(json_str(r.out, e + "/record/txn") == s.txn);
      CHECK(json_str(r.out, e + "/record/actor/role") == w.role);
      CHECK(json_str(r.out, e + "/record/actor/device") == w.device);
      CHECK(json_int(r.out, e + "/record/time") >= s.before_ms);
      CHECK(json_int(r.out, e + "/record/time") <= s.after_ms);
      CHECK(json_str(r.out, e + "/record/outcome/before") == (w.before ? std::optional<std::string>(w.before) : std::nullopt));
      CHECK(json_str(r.out, e + "/record/outcome/after") == (w.after ? std::optional<std::string>(w.after) : std::nullopt));
    }
    // Notifications: the invitation to MT; status changes to both parties except the
    // device that caused them; none for the rejection and the noop.
    const std::string inv = "/events/0/notifications/0";
    CHECK(json_str(r.out, inv + "/frame/sessionInvitationNotification/receiverAddress") == "tel:+" + mt.number);
    CHECK(json_str(r.out, inv + "/frame/sessionInvitationNotification/sdp") == sdp("mo-offer"));
    CHECK(json_int(r.out, inv + "/frame/sessionInvitationNotification/notificationReference/sequenceNumber") == 1);
    CHECK(json_str(r.out, inv + "/recipients/0") == mt.number);
    CHECK_FALSE(json_has(r.out, inv + "/recipients/1"));
    CHECK(json_str(r.out, "/events/1/notifications/0/frame/sessionStatusNotification/status") == "Ringing");
    CHECK(json_int(r.out, "/events/1/notifications/0/frame/sessionStatusNotification/responseCode") == 180);
    CHECK(json_str(r.out, "/events/3/notifications/0/frame/sessionStatusNotification/status") == "Hold");
    CHECK(json_str(r.out, "/events/3/notifications/0/frame/sessionStatusNotification/sdp") == sdp("mo-hold"));
    CHECK(json_str(r.out, "/events/3/notifications/0/except/device") == "mo-phone");
    CHECK_FALSE(json_has(r.out, "/events/4/notifications/0"));  // rejected
    CHECK(json_str(r.out, "/events/4/record/outcome/reasonCode") == "WRONG_PARTY");
    const std::string end = "/events/6/notifications/0";
    CHECK(json_str(r.out, end + "/frame/sessionStatusNotification/status") == "Terminated");
    CHECK(json_str(r.out, end + "/frame/sessionStatusNotification/reason") == "bye");
    CHECK(json_str(r.out, end + "/recipients/0") == mo.number);
    CHECK(json_str(r.out, end + "/recipients/1") == mt.number);
    CHECK(json_str(r.out, end + "/except/device") == "mt-phone");
    CHECK_FALSE(json_has(r.out, "/events/7/notifications/0"));  // noop
    CHECK(json_bool(r.out, "/events/7/record/outcome/noop") == true);
    // The call after its last event.
    CHECK(json_str(r.out, "/call/status") == "Terminated");
    CHECK(json_str(r.out, "/call/endReason") == "bye");
    CHECK(json_str(r.out, "/call/sdp/to") == sdp("mt-hold"));
    CHECK(json_bool(r.out, "/ok") == true);
  }

  SUBCASE("the human table") {
    const auto r = run(eng, "timeline " + id);
    INFO(r.out, r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.find("call " + id + " from " + mo.number + " to " + mt.number + ": Terminated, 8 events") !=
          std::string::npos);
    for (const want& w : expected) CHECK(r.out.find(k.steps[static_cast<std::size_t>(w.seq - 1)].txn) != std::string::npos);
    CHECK(r.out.find(k.steps[1].txn) == std::string::npos);  // the other call's
    CHECK(r.out.find(k.steps[4].txn) == std::string::npos);
    CHECK(r.out.find("MT " + mt.number + " mt-phone") != std::string::npos);
    CHECK(r.out.find("WRONG_PARTY") != std::string::npos);
    CHECK(r.out.find("Connected -> Hold") != std::string::npos);
    CHECK(r.out.find("Hold -> Terminated") != std::string::npos);
    CHECK(r.out.find("noop") != std::string::npos);
    CHECK(r.out.find("sdp: s=mo-hold audio 49170 RTP/AVP 0") != std::string::npos);
    CHECK(r.out.find("=> invitation to " + mt.number) != std::string::npos);
    CHECK(r.out.find("=> status Ringing [180] to " + mo.number + ", " + mt.number + " except device mt-phone") !=
          std::string::npos);
    CHECK(r.out.find("reason=bye") != std::string::npos);
    CHECK(r.out.find("=> status Terminated reason=bye to " + mo.number + ", " + mt.number) != std::string::npos);
  }
}

TEST_CASE("tool audit: by number, transaction id and time, alone and combined") {
  engine_process eng;
  caller k(eng);
  const party a = new_party(eng, "a-phone"), b = new_party(eng, "b-phone"), c = new_party(eng, "c-phone");
  const party s = new_party(eng, "s-phone");  // a stranger to every call
  const std::string id1 = k.start(a, b, sdp("a"));  // 1
  k.act("ringing", id1, b);                          // 2
  k.act("connected", id1, b, sdp("b"));              // 3
  k.end(id1, a);                                     // 4
  gap();
  const std::int64_t t1 = now_ms();
  gap();
  const std::string id2 = k.start(c, b, sdp("c"));  // 5
  k.end(id2, c);                                     // 6
  k.act("ringing", id1, s);                          // 7: FORBIDDEN
  gap();
  const std::int64_t t2 = now_ms();
  gap();
  const std::string id3 = k.start(a, c, sdp("a3"));  // 8
  k.act("ringing", id3, c);                           // 9
  k.end(id3, c, "busy");                              // 10: Busy
  REQUIRE(k.steps.size() == 10);
  CHECK(k.steps[6].status == 403);

  auto audit = [&](const std::string& args) {
    const auto r = run(eng, "--json audit " + args);
    INFO("audit ", args, ": ", r.out, r.err);
    CHECK(r.code == 0);
    return seqs_of(r.out, k.steps);
  };
  using S = std::set<std::int64_t>;
  const std::string T1 = "@" + std::to_string(t1), T2 = "@" + std::to_string(t2);
  CHECK(audit("") == S{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK(audit("--msisdn " + a.number) == S{1, 2, 3, 4, 7, 8, 9, 10});  // 7: on a's call
  CHECK(audit("--msisdn +" + b.number) == S{1, 2, 3, 4, 5, 6, 7});
  CHECK(audit("--msisdn " + s.number) == S{7});
  CHECK(audit("--msisdn " + s.number + " --msisdn " + c.number) == S{5, 6, 7, 8, 9, 10});
  CHECK(audit("--txn " + k.steps[4].txn) == S{5});
  CHECK(audit("--txn " + k.steps[8].txn + " --msisdn " + a.number) == S{9});
  CHECK(audit("--txn " + k.steps[8].txn + " --msisdn " + b.number) == S{});
  CHECK(audit("--since " + T1) == S{5, 6, 7, 8, 9, 10});
  CHECK(audit("--until " + T2) == S{1, 2, 3, 4, 5, 6, 7});
  CHECK(audit("--since " + T1 + " --until " + T2) == S{5, 6, 7});
  CHECK(audit("--msisdn " + b.number + " --since " + T1) == S{5, 6, 7});
  CHECK(audit("--msisdn " + a.number + " --until " + T1) == S{1, 2, 3, 4});
  CHECK(audit("--txn " + k.steps[4].txn + " --until " + T1) == S{});
  CHECK(audit("--msisdn 19999999999") == S{});

  const auto human = run(eng, "audit --msisdn " + s.number);
  INFO(human.out, human.err);
  CHECK(human.code == 0);
  CHECK(human.out.find("stranger " + s.number + " s-phone") != std::string::npos);
  CHECK(human.out.find("FORBIDDEN") != std::string::npos);
  CHECK(human.out.find(id1) != std::string::npos);
  CHECK(human.out.find(k.steps[6].txn) != std::string::npos);
  CHECK(human.out.find("(1 event)") != std::string::npos);
  const auto busy = run(eng, "audit --txn " + k.steps[9].txn);
  CHECK(busy.out.find("reason=busy") != std::string::npos);
  CHECK(busy.out.find("Ringing -> Busy") != std::string::npos);
}

TEST_CASE("tool export: the stored records as JSON lines, byte for byte") {
  engine_process eng;
  caller k(eng);
  const party a = new_party(eng), b = new_party(eng);
  const std::string id1 = k.start(a, b, sdp("a"));  // 1
  k.act("connected", id1, b, sdp("b"));              // 2
  k.end(id1, b);                                     // 3
  gap();
  const std::int64_t t = now_ms();
  gap();
  const std::string id2 = k.start(b, a, sdp("b2"));  // 4
  k.act("ringing", id2, a);                           // 5
  for (const auto& s : k.steps) REQUIRE(s.status == 200);

  const auto all = run(eng, "export");
  INFO(all.out, all.err);
  REQUIRE(all.code == 0);
  const auto ls = lines(all.out);
  REQUIRE(ls.size() == 5);
  std::string prev(64, '0');
  for (std::size_t i = 0; i < ls.size(); ++i) {
    CHECK(json_int(ls[i], "/seq") == static_cast<std::int64_t>(i + 1));
    CHECK(json_str(ls[i], "/txn") == k.steps[i].txn);
    CHECK(json_str(ls[i], "/prev") == prev);  // the chain holds over the exported bytes
    prev = schemas::to_hex(schemas::sha256(ls[i]));
  }
  CHECK(seqs_of(run(eng, "export --from 2 --to 4").out, k.steps) == std::set<std::int64_t>{2, 3, 4});
  CHECK(seqs_of(run(eng, "export --call " + id2).out, k.steps) == std::set<std::int64_t>{4, 5});
  CHECK(seqs_of(run(eng, "export --since @" + std::to_string(t)).out, k.steps) == std::set<std::int64_t>{4, 5});
  CHECK(seqs_of(run(eng, "export --until @" + std::to_string(t) + " --from 2").out, k.steps) ==
        std::set<std::int64_t>{2, 3});

  REQUIRE(eng.stop().clean());
  raw_db db(eng.data_dir());
  for (std::size_t i = 0; i < ls.size(); ++i) CHECK(db.get("events", i + 1) == ls[i]);
}

TEST_CASE("tool timeline: a forwarded-then-transferred call shows the whole chain: dialled, each diversion, "
          "the answer, the transfer and the call that took it up") {
  engine_process eng;
  http_client c(eng.port());
  const party a = new_party(eng, "a-phone"), b = new_party(eng, "b-phone");
  const party t = new_party(eng, "t-phone"), v = new_party(eng, "v-phone");
  // B forwards everything to T (unconditional); T answers, then transfers A to V.
  REQUIRE(c.request("PUT", "/settings/" + b.number, R"({"forwarding":{"unconditional":")" + t.number + R"("}})",
                    b.auth()).status == 200);
  auto s = c.post("/start", start_body(a.number, b.number, sdp("a-offer")), a.auth());
  REQUIRE(s.status == 200);
  const std::string id = json_str(s.body, "/callId").value_or("");
  REQUIRE(c.post("/connected/" + id, sdp_body(sdp("t-answer")), t.auth()).status == 200);
  REQUIRE(c.post("/transfer/" + id, R"({"to":")" + v.number + R"("})", t.auth()).status == 200);
  auto next = c.post("/start",
                     R"({"from":")" + a.number + R"(","to":")" + v.number + R"(","sdp":)" + json_quote(sdp("again")) +
                         R"(,"transferOf":")" + id + R"("})",
                     a.auth());
  REQUIRE(next.status == 200);
  const std::string id2 = json_str(next.body, "/callId").value_or("");

  const auto r = run(eng, "timeline " + id);
  REQUIRE(r.code == 0);
  INFO(r.out);
  CHECK(r.out.find("gave-way") != std::string::npos);                                // the start rang nobody
  CHECK(r.out.find("forwarded=" + b.number + " -> " + t.number) != std::string::npos);  // the diversion
  CHECK(r.out.find("reason=unconditional") != std::string::npos);
  CHECK(r.out.find("invites=" + t.number + " (diversion " + b.number + ")") != std::string::npos);
  CHECK(r.out.find("status Forwarded") != std::string::npos);
  CHECK(r.out.find("invitation to " + t.number + " (diverted by " + b.number + ")") != std::string::npos);
  CHECK(r.out.find("transferredTo=" + v.number) != std::string::npos);
  CHECK(r.out.find("reason=transferred") != std::string::npos);
  const auto r2 = run(eng, "timeline " + id2);
  REQUIRE(r2.code == 0);
  CHECK(r2.out.find("transferOf=" + id + " (from " + t.number + ")") != std::string::npos);
  // The JSON form carries the same records.
  const auto j = run(eng, "--json timeline " + id);
  REQUIRE(j.code == 0);
  CHECK(j.out.find("\"type\":\"forward\"") != std::string::npos);
  CHECK(j.out.find("\"type\":\"transfer\"") != std::string::npos);
  // Audit by number lists the settings event under B.
  const auto au = run(eng, "audit --msisdn " + b.number);
  INFO(au.out, au.err);
  CHECK(au.code == 0);
  CHECK(au.out.find("settings") != std::string::npos);
  CHECK(au.out.find("cfu=" + t.number) != std::string::npos);
  // The call detail records: the number dialled, the diversion, where the transfer went.
  REQUIRE(c.del("/end/" + id2, a.auth()).status == 200);
  const auto cdr = run(eng, "cdr");
  REQUIRE(cdr.code == 0);
  INFO(cdr.out);
  CHECK(cdr.out.find("," + b.number + "," + b.number + ">" + t.number + ":unconditional," + v.number + ",,") !=
        std::string::npos);
  CHECK(cdr.out.find(",transferred,") != std::string::npos);
  CHECK(cdr.out.find("," + v.number + ",,," + id + ",") != std::string::npos);  // the call that took it up
}
