// Push registrations over the real binary (contract §13): POST /pushers registers the
// token's device, DELETE /pushers/{deviceId} removes it; the limits, the outbound rule on
// the URL, persistence across a restart, and the engine removing an expired one.
#include <doctest/doctest.h>

#include <sstream>
#include <thread>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/harness.hpp"
#include "tests/integration/node_child.hpp"

using namespace integration;

namespace {

std::string pusher_body(std::string_view url = "https://push.example.com/_matrix/push/v1/notify",
                        std::string_view pushkey = "pk-1", std::string_view data = R"({"format":"event_id_only"})") {
  std::string b = "{\"url\":" + json_quote(url) + ",\"appId\":\"com.example.phone\",\"pushkey\":" + json_quote(pushkey);
  if (!data.empty()) b += ",\"data\":" + std::string(data);
  return b + "}";
}

}  // namespace

TEST_CASE("pushers: register, limits, another device's 403, removal, kept across a restart") {
  engine_process eng({"--outbound-allow", "push.example.com", "--max-pushers-per-sub", "2"});
  http_client c(eng.port());
  const std::string number = fresh_msisdn();
  // Three devices of one subject (the harness's tokens of one number share their sub).
  const std::string phone = eng.token({number}, "phone"), tablet = eng.token({number}, "tablet"),
                    laptop = eng.token({number}, "laptop");

  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(), bearer(phone)));
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body("https://push.example.com/n", "pk-2"), bearer(phone)));  // replaces
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(), bearer(tablet)));
  CHECK_ERROR(c.post("/pushers", pusher_body(), bearer(laptop)), 429, "TOO_MANY_PUSHERS");

  // Input: a host not allowed, not a URL, a missing field, data not an object, too long a
  // pushkey; no PoP.
  CHECK_ERROR(c.post("/pushers", pusher_body("https://evil.example.net/x"), bearer(phone)), 400, "INVALID_FIELD");
  CHECK_ERROR(c.post("/pushers", pusher_body("ftp://push.example.com/"), bearer(phone)), 400, "INVALID_FIELD");
  CHECK_ERROR(c.post("/pushers", R"({"url":"https://push.example.com/","appId":"a"})", bearer(phone)), 400,
              "MISSING_FIELD");
  CHECK_ERROR(c.post("/pushers", pusher_body("https://push.example.com/", "pk", "[1]"), bearer(phone)), 400,
              "INVALID_FIELD");
  CHECK_ERROR(c.post("/pushers", pusher_body("https://push.example.com/", std::string(513, 'k')), bearer(phone)),
              400, "INVALID_FIELD");
  CHECK_ERROR(c.post("/pushers", pusher_body(), bearer(phone, {{"X-Authorization", std::string(no_pop)}})), 401,
              "POP_MISSING");

  // Another device's registration: 403; one's own: gone; again: still 200.
  CHECK_ERROR(c.del("/pushers/tablet", bearer(phone)), 403, "FORBIDDEN");
  CHECK_EMPTY_OK(c.del("/pushers/phone", bearer(phone)));
  CHECK_EMPTY_OK(c.del("/pushers/phone", bearer(phone)));
  CHECK_ERROR(c.del("/pushers/bad%20id", bearer(phone)), 400, "INVALID_FIELD");
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(), bearer(laptop)));  // the cap has room again
  CHECK_ERROR(c.post("/pushers", pusher_body(), bearer(phone)), 429, "TOO_MANY_PUSHERS");

  auto m = c.get("/metrics");
  CHECK(metric_sum(m.body, "yna_http_requests_total", {"endpoint=\"registerPusher\"", "status=\"200\""}).value_or(0) == 4);
  CHECK(metric_sum(m.body, "yna_http_requests_total", {"endpoint=\"unregisterPusher\"", "status=\"403\""}).value_or(0) == 1);

  // After a SIGKILL the registrations are still there: the cap still counts them.
  eng.kill9();
  eng.start();
  c.set_port(eng.port());
  CHECK_ERROR(c.post("/pushers", pusher_body(), bearer(eng.token({number}, "phone"))), 429, "TOO_MANY_PUSHERS");
  CHECK_EMPTY_OK(c.del("/pushers/tablet", bearer(eng.token({number}, "tablet"))));
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(), bearer(eng.token({number}, "phone"))));
}

TEST_CASE("pushers: a registration expires --pusher-ttl after its token, removed by the engine") {
  engine_process eng({"--outbound-allow", "push.example.com", "--max-pushers-per-sub", "1", "--pusher-ttl", "1"});
  http_client c(eng.port());
  const std::string number = fresh_msisdn();
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(), bearer(eng.token({number}, "phone", std::chrono::seconds(2)))));
  const std::string other = eng.token({number}, "tablet");
  CHECK_ERROR(c.post("/pushers", pusher_body(), bearer(other)), 429, "TOO_MANY_PUSHERS");
  // The phone's token expires in 2 s, its registration 1 s later: then the cap has room.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = c.post("/pushers", pusher_body(), bearer(other)).status;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  CHECK(status == 200);
  if (auto tool = tool_path()) {
    eng.stop();
    const auto r = run_command(tool->string() + " --data-dir " + shell_quote(eng.data_dir().string()) +
                               " audit --msisdn " + number + " --json");
    INFO(r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("\"expired\"") != std::string::npos);
    const auto v = run_command(tool->string() + " --data-dir " + shell_quote(eng.data_dir().string()) + " replay");
    INFO(v.out);
    CHECK(v.exit_code == 0);
  }
}

namespace {

// The pushes the gateway got so far, as JSON lines.
std::vector<std::string> pushes(const std::filesystem::path& file) { return json_lines(file); }

// Waits until `n` pushes arrived (at most 15 s). When they did not, a failed check says
// what the engine logged about push, on one line (what CI's summary shows).
std::vector<std::string> wait_pushes(const std::filesystem::path& file, std::size_t n, const engine_process& eng) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  auto got = pushes(file);
  while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    got = pushes(file);
  }
  if (got.size() < n) {
    std::string said;
    std::istringstream lines(eng.stderr_tail(200));
    for (std::string l; std::getline(lines, l);)
      if (l.find("push") != std::string::npos || l.find("dispatch") != std::string::npos) said += l + " | ";
    FAIL_CHECK("ERROR: " << got.size() << " of " << n << " pushes after 15 s; the engine logged: " << said);
  }
  return got;
}

}  // namespace

TEST_CASE("push: a device without a socket gets the invitation and the status that stops it; with one, nothing") {
  scratch_dir dir;
  node_child gateway("tests/integration/push_gateway.mjs", {(dir.path / "pushes.jsonl").string()},
                     dir.path / "gateway.out");
  const std::uint16_t gport = gateway.start({"0"});
  const std::string gw = "http://127.0.0.1:" + std::to_string(gport) + "/_matrix/push/v1/notify";
  engine_process eng({"--outbound-allow", "127.0.0.1"});
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const std::string mt = fresh_msisdn();
  const std::string phone = eng.token({mt}, "phone"), tablet = eng.token({mt}, "tablet");
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(gw, "pk-phone", R"({"k":"v"})"), bearer(phone)));
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(gw, "pk-tablet"), bearer(tablet)));
  // The tablet has its socket open: it is told over it, not pushed.
  auto tablet_ws = ws_client::connect(eng.port(), "/notifications", bearer(tablet, {{"X-Authorization", std::string(no_pop)}}));

  auto r = c.post("/start", start_body(mo.number, mt, sdp("offer")), mo.auth());
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  auto got = wait_pushes(dir.path / "pushes.jsonl", 1, eng);
  REQUIRE(got.size() == 1);
  const std::string& invite = got[0];
  INFO(invite);
  CHECK(json_str(invite, "/path") == std::optional<std::string>("/_matrix/push/v1/notify"));
  CHECK(json_str(invite, "/body/notification/type") == std::optional<std::string>("yna.call.invite"));
  CHECK(json_str(invite, "/body/notification/prio") == std::optional<std::string>("high"));
  CHECK(json_str(invite, "/body/notification/sender") == std::optional<std::string>("tel:+" + mo.number));
  CHECK(json_str(invite, "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-phone"));
  CHECK(json_str(invite, "/body/notification/devices/0/app_id") == std::optional<std::string>("com.example.phone"));
  CHECK(json_str(invite, "/body/notification/devices/0/data/k") == std::optional<std::string>("v"));
  CHECK(json_str(invite, "/body/notification/content/sessionInvitationNotification/callObjectRef") ==
        std::optional<std::string>("/calls/" + id));
  CHECK_FALSE(json_has(invite, "/body/notification/content/sessionInvitationNotification/sdp"));  // no SDP in a push
  CHECK(tablet_ws->next(std::chrono::seconds(5)).has_value());  // the tablet heard it on its socket

  // Answered on another device of MT (no pusher, no socket): the phone's push says the
  // ringing is over.
  const std::string desk = eng.token({mt}, "desk");
  CHECK_200(c.post("/ringing/" + id, "{}", bearer(desk)));
  CHECK_200(c.post("/connected/" + id, sdp_body(sdp("answer")), bearer(desk)));
  got = wait_pushes(dir.path / "pushes.jsonl", 2, eng);
  REQUIRE(got.size() == 2);
  INFO(got[1]);
  CHECK(json_str(got[1], "/body/notification/type") == std::optional<std::string>("yna.call.status"));
  CHECK(json_str(got[1], "/body/notification/content/sessionStatusNotification/status") ==
        std::optional<std::string>("Connected"));
  CHECK(json_str(got[1], "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-phone"));
  CHECK_200(c.del("/end/" + id, mo.auth()));

  // A call the phone answers itself (woken by its push): it is not pushed its own answer.
  // The phone's pushes go one at a time in log order, so the next call's invitation
  // arriving right after this one's proves nothing came between (no push for the first
  // call's end, none for the phone's own answer): no waiting for an absence.
  auto invitation_of = [&] {
    r = c.post("/start", start_body(mo.number, mt, sdp("offer")), mo.auth());
    REQUIRE_200(r);
    return json_str(r.body, "/callId").value_or("");
  };
  const std::string id2 = invitation_of();
  got = wait_pushes(dir.path / "pushes.jsonl", 3, eng);
  REQUIRE(got.size() == 3);
  CHECK(json_str(got[2], "/body/notification/content/sessionInvitationNotification/callObjectRef") ==
        std::optional<std::string>("/calls/" + id2));
  CHECK_200(c.post("/connected/" + id2, sdp_body(sdp("answer2")), bearer(phone)));
  const std::string id3 = invitation_of();
  got = wait_pushes(dir.path / "pushes.jsonl", 4, eng);
  REQUIRE(got.size() >= 4);
  CHECK(got.size() == 4);
  CHECK(json_str(got[3], "/body/notification/type") == std::optional<std::string>("yna.call.invite"));
  CHECK(json_str(got[3], "/body/notification/content/sessionInvitationNotification/callObjectRef") ==
        std::optional<std::string>("/calls/" + id3));
}

TEST_CASE("push: a pushkey the gateway rejects is unregistered by the engine") {
  scratch_dir dir;
  node_child gateway("tests/integration/push_gateway.mjs", {(dir.path / "pushes.jsonl").string()},
                     dir.path / "gateway.out");
  const std::string gw = "http://127.0.0.1:" + std::to_string(gateway.start({"0"})) + "/_matrix/push/v1/notify";
  engine_process eng({"--outbound-allow", "127.0.0.1", "--max-pushers-per-sub", "1"});
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const std::string mt = fresh_msisdn();
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(gw, "reject-me"), bearer(eng.token({mt}, "old-phone"))));
  auto r = c.post("/start", start_body(mo.number, mt, sdp("offer")), mo.auth());
  REQUIRE_200(r);
  REQUIRE(wait_pushes(dir.path / "pushes.jsonl", 1, eng).size() == 1);
  // The registration is gone: the subject's one slot is free again.
  const std::string other = eng.token({mt}, "new-phone");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline &&
         (status = c.post("/pushers", pusher_body(gw, "pk-new"), bearer(other)).status) != 200)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(status == 200);
  // A second call pushes the new phone only.
  REQUIRE_200(c.post("/start", start_body(mo.number, mt, sdp("offer2")), mo.auth()));
  auto got = wait_pushes(dir.path / "pushes.jsonl", 2, eng);
  REQUIRE(got.size() == 2);
  CHECK(json_str(got[1], "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-new"));
}

TEST_CASE("push: a call forwarded away from a pushed device tells it Forwarded (it stops ringing); the target's "
          "device is pushed the diversion's invitation") {
  scratch_dir dir;
  node_child gateway("tests/integration/push_gateway.mjs", {(dir.path / "pushes.jsonl").string()},
                     dir.path / "gateway.out");
  const std::uint16_t gport = gateway.start({"0"});
  const std::string gw = "http://127.0.0.1:" + std::to_string(gport) + "/_matrix/push/v1/notify";
  engine_process eng({"--outbound-allow", "127.0.0.1", "--answer-timeout", "2", "--invite-timeout", "0"});
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const std::string mt = fresh_msisdn(), target = fresh_msisdn();
  const std::string phone = eng.token({mt}, "phone"), other = eng.token({target}, "other-phone");
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(gw, "pk-mt"), bearer(phone)));
  CHECK_EMPTY_OK(c.post("/pushers", pusher_body(gw, "pk-target"), bearer(other)));
  REQUIRE(c.request("PUT", "/settings/" + mt, R"({"forwarding":{"noAnswer":{"to":")" + target + R"(","timeout":60}}})",
                    bearer(phone))
              .status == 200);
  auto r = c.post("/start", start_body(mo.number, mt, sdp("offer")), mo.auth());
  REQUIRE_200(r);
  const std::string id = json_str(r.body, "/callId").value_or("");
  // The MT's phone is pushed the invitation; 2 s later the answer timer diverts by CFNR.
  auto got = wait_pushes(dir.path / "pushes.jsonl", 3, eng);
  REQUIRE(got.size() == 3);
  INFO(got[0], "\n", got[1], "\n", got[2]);
  CHECK(json_str(got[0], "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-mt"));
  CHECK(json_str(got[0], "/body/notification/type") == std::optional<std::string>("yna.call.invite"));
  // The stop for the MT's phone and the invitation for the target's (different devices:
  // either order).
  const bool stop_first = json_str(got[1], "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-mt");
  const std::string& stop = stop_first ? got[1] : got[2];
  const std::string& invite = stop_first ? got[2] : got[1];
  CHECK(json_str(stop, "/body/notification/type") == std::optional<std::string>("yna.call.status"));
  CHECK(json_str(stop, "/body/notification/content/sessionStatusNotification/status") ==
        std::optional<std::string>("Forwarded"));
  CHECK(json_str(invite, "/body/notification/devices/0/pushkey") == std::optional<std::string>("pk-target"));
  CHECK(json_str(invite, "/body/notification/type") == std::optional<std::string>("yna.call.invite"));
  CHECK(json_str(invite, "/body/notification/content/sessionInvitationNotification/diversionAddress") ==
        std::optional<std::string>("tel:+" + mt));
  CHECK(json_str(invite, "/body/notification/content/sessionInvitationNotification/callObjectRef") ==
        std::optional<std::string>("/calls/" + id));
}
