// Push registrations over the real binary (contract §13): POST /pushers registers the
// token's device, DELETE /pushers/{deviceId} removes it; the limits, the outbound rule on
// the URL, persistence across a restart, and the engine removing an expired one.
#include <doctest/doctest.h>

#include <thread>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/harness.hpp"

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
