// Notifications over WebSocket against the real binary (contract §5).
#include "tests/integration/api_fixture.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;

namespace {



}  // namespace

TEST_CASE("notifications: invitation to every MT device, status to the other party, not to the actor") {
  engine_process eng;
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-phone");
  party mt1 = new_party(eng, "mt-phone-1");
  party mt2{mt1.number, eng.token({mt1.number}, "mt-phone-2")};
  const party stranger = new_party(eng, "x");
  auto w_mo = listen(eng, mo);
  auto w_mt1 = listen(eng, mt1);
  auto w_mt2 = listen(eng, mt2);
  auto w_x = listen(eng, stranger);

  auto r = c.post("/start", start_body(mo.number, mt1.number, sdp("offer")), mo.auth());
  REQUIRE(r.status == 200);
  const std::string id = json_str(r.body, "/callId").value_or("");
  for (auto* w : {w_mt1.get(), w_mt2.get()}) {
    auto f = w->next();
    REQUIRE(f);
    CHECK(frame_type(*f) == "sessionInvitationNotification");
    CHECK(call_id_of(*f) == id);
    CHECK(json_str(*f, "/sessionInvitationNotification/originatorAddress") == "tel:+" + mo.number);
    CHECK(json_str(*f, "/sessionInvitationNotification/verificationStatus") == "TN-Validation-Passed");
    CHECK(json_str(*f, "/sessionInvitationNotification/sdp") == sdp("offer"));
  }
  CHECK(w_mo->drain().empty());

  REQUIRE(c.post("/ringing/" + id, "{}", mt1.auth()).status == 200);
  auto f = w_mo->next();
  REQUIRE(f);
  CHECK(frame_status(*f) == "Ringing");
  auto f2 = w_mt2->next();  // the other MT device hears it too
  REQUIRE(f2);
  CHECK(frame_status(*f2) == "Ringing");
  CHECK(frame_seq(*f2) == frame_seq(*f));
  CHECK(w_mt1->drain().empty());  // not the device that caused it

  REQUIRE(c.post("/connected/" + id, sdp_body(sdp("answer")), mt1.auth()).status == 200);
  f = w_mo->next();
  REQUIRE(f);
  CHECK(frame_status(*f) == "Connected");
  CHECK(json_str(*f, "/sessionStatusNotification/sdp") == sdp("answer"));
  f2 = w_mt2->next();  // stops ringing
  REQUIRE(f2);
  CHECK(frame_status(*f2) == "Connected");
  // a second answer is refused and notifies nobody
  auto second = c.post("/connected/" + id, sdp_body(sdp("late")), mt2.auth());
  CHECK(second.status == 400);
  CHECK(w_mo->drain().empty());
  CHECK(w_x->drain().empty());
}

TEST_CASE("notifications: resume with since replays without gap or duplicate; late device gets ringing invitations") {
  engine_process eng;
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-phone");
  const party mt = new_party(eng, "mt-phone");
  auto w = listen(eng, mo);
  auto r = c.post("/start", start_body(mo.number, mt.number, sdp("offer")), mo.auth());
  REQUIRE(r.status == 200);
  const std::string id = json_str(r.body, "/callId").value_or("");
  REQUIRE(c.post("/ringing/" + id, "{}", mt.auth()).status == 200);
  auto first = w->next();
  REQUIRE(first);
  const auto seen = frame_seq(*first);
  w.reset();  // dropped mid-call
  REQUIRE(c.post("/connected/" + id, sdp_body(sdp("answer")), mt.auth()).status == 200);
  REQUIRE(c.post("/hold/" + id, sdp_body(sdp("hold")), mt.auth()).status == 200);
  auto back = listen(eng, mo, "?since=" + std::to_string(seen));
  REQUIRE(c.post("/acceptHold/" + id, sdp_body(sdp("held")), mo.auth()).status == 200);  // by MO: not told back
  REQUIRE(c.post("/resume/" + id, sdp_body(sdp("resume")), mt.auth()).status == 200);
  const auto frames = back->drain(std::chrono::milliseconds(800));
  std::vector<std::string> statuses;
  std::uint64_t last = seen;
  for (const auto& fr : frames) {
    CHECK(frame_seq(fr) > last);
    last = frame_seq(fr);
    statuses.push_back(frame_status(fr));
  }
  CHECK(statuses == std::vector<std::string>{"Connected", "Hold", "Resume"});

  // a device of MT that connects late, while another call is still ringing it
  const party mo2 = new_party(eng, "mo2");
  auto r2 = c.post("/start", start_body(mo2.number, mt.number, sdp("offer2")), mo2.auth());
  REQUIRE(r2.status == 200);
  auto late = listen(eng, mt);
  auto inv = late->next();
  REQUIRE(inv);
  CHECK(frame_type(*inv) == "sessionInvitationNotification");
  CHECK(call_id_of(*inv) == json_str(r2.body, "/callId").value_or("?"));
  CHECK(late->drain().empty());  // the connected call's invitation is not sent again
}

TEST_CASE("notifications: upgrade needs a token; access_token query parameter works") {
  engine_process eng;
  const party mo = new_party(eng, "mo-phone");
  CHECK(ws_client::refused_status(eng.port(), "/notifications") == 401);
  CHECK(ws_client::refused_status(eng.port(), "/notifications", bearer("garbage")) == 401);
  CHECK(ws_client::refused_status(eng.port(), "/notifications?since=abc", mo.auth()) == 400);
  CHECK(ws_client::refused_status(eng.port(), "/elsewhere", mo.auth()) == 404);
  auto w = ws_client::connect(eng.port(), "/notifications?access_token=" + mo.tok);
  http_client c(eng.port());
  const party mt = new_party(eng, "mt");
  auto r = c.post("/start", start_body(mt.number, mo.number, sdp("offer")), mt.auth());
  REQUIRE(r.status == 200);
  auto f = w->next();
  REQUIRE(f);
  CHECK(frame_type(*f) == "sessionInvitationNotification");
}

TEST_CASE("notifications: a reader that never reads is cut off while others keep receiving") {
  // 300 calls from one number, 200 ringing one number: past both call caps (off here).
  engine_process eng({"--ws-max-queue", "16", "--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0", "--max-calls-per-number", "0",
                      "--max-ringing-per-number", "0"});
  http_client c(eng.port());
  const party mo = new_party(eng, "mo");
  const party victim = new_party(eng, "stalled-phone");
  auto stalled = ws_client::connect(eng.port(), "/notifications",
                                    victim.auth({{"X-Authorization", std::string(no_pop)}}), /*read=*/false);
  std::vector<std::unique_ptr<ws_client>> others;
  std::vector<party> callees;
  for (int i = 0; i < 100; ++i) {
    callees.push_back(new_party(eng, "mt"));
    others.push_back(listen(eng, callees.back()));
  }
  // 200 invitations of ~60 KiB each to the stalled device: far more than the socket
  // buffers hold, so its queue overflows; meanwhile every other socket gets its call.
  std::string big = sdp("big");
  big += std::string("a=x-pad:") + std::string(60000, 'p') + "\r\n";
  for (int i = 0; i < 200; ++i) {
    REQUIRE(c.post("/start", start_body(mo.number, victim.number, big), mo.auth()).status == 200);
    if (i % 2 == 0) {
      const auto k = static_cast<std::size_t>(i / 2);
      REQUIRE(c.post("/start", start_body(mo.number, callees[k].number, sdp("small")), mo.auth()).status == 200);
    }
  }
  int received = 0;
  for (auto& o : others) {
    auto f = o->next(std::chrono::seconds(10));
    received += f && frame_type(*f) == "sessionInvitationNotification";
  }
  CHECK(received == 100);
  const auto m = c.get("/metrics").body;
  CHECK(metric_value(m, "yna_ws_slow_closed_total").value_or(0) >= 1);
}

TEST_CASE("notifications: idle sockets are pinged; one that never answers is closed, one that does stays") {
  engine_process eng({"--ws-idle-timeout", "1"});
  const party a = new_party(eng, "a");
  const party b = new_party(eng, "b");
  auto silent = ws_client::connect(eng.port(), "/notifications", a.auth({{"X-Authorization", std::string(no_pop)}}),
                                   /*read=*/false);  // never reads: never answers a ping
  auto alive = listen(eng, b);                        // reads: Beast answers pings with pongs
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  http_client c(eng.port());
  const auto m = c.get("/metrics").body;
  CHECK(metric_value(m, "yna_ws_connections").value_or(-1) == 1);  // only the answering one is left
  CHECK_FALSE(alive->closed());
  // and it still receives
  auto r = c.post("/start", start_body(a.number, b.number, sdp("offer")), a.auth());
  REQUIRE(r.status == 200);
  auto f = alive->next();
  REQUIRE(f);
  CHECK(frame_type(*f) == "sessionInvitationNotification");
}
