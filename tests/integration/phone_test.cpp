// The web softphone's engine side (issue 9): its static files under /phone/ and the
// development tokens of POST /dev/token, on the real binary. The page itself runs in
// headless Chromium in tests/browser/phone.test.mjs.
#include <doctest/doctest.h>

#include <fstream>

#include "schemas/jose.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;
namespace jose = schemas::jose;

namespace {

std::string token_request(std::string_view msisdn, std::string_view jwk, std::string_view extra = "") {
  return "{\"msisdn\":" + json_quote(msisdn) + ",\"jwk\":" + std::string(jwk) + std::string(extra) + "}";
}

}  // namespace

TEST_CASE("api: /phone/ serves the web softphone from the binary") {
  http_client c(shared_engine().port());
  auto r = c.get("/phone");
  CHECK(r.status == 301);
  CHECK(r.header("location") == std::optional<std::string>("/phone/"));

  struct file { const char* target; const char* type; const char* contains; };
  for (const file f : {file{"/phone/", "text/html; charset=utf-8", "<script type=\"module\" src=\"app.js\">"},
                       file{"/phone/index.html", "text/html; charset=utf-8", "yna softphone"},
                       file{"/phone/app.js", "text/javascript; charset=utf-8", "RTCPeerConnection"},
                       file{"/phone/pop.js", "text/javascript; charset=utf-8", "RSASSA-PKCS1-v1_5"},
                       file{"/phone/style.css", "text/css; charset=utf-8", "#log"}}) {
    CAPTURE(f.target);
    r = c.get(f.target);
    CHECK(r.status == 200);
    CHECK(r.content_type() == f.type);
    CHECK(r.header("cache-control") == std::optional<std::string>("no-cache"));
    CHECK(r.body.find(f.contains) != std::string::npos);
  }
  for (const char* missing : {"/phone/nope.js", "/phone/a/app.js", "/phone/../README.md", "/phone/.git"}) {
    CAPTURE(missing);
    CHECK_ERROR(c.get(missing), 404, "NOT_FOUND");
  }
  r = c.post("/phone/", "{}");
  CHECK_ERROR(r, 405, "METHOD_NOT_ALLOWED");
  CHECK(r.header("allow") == std::optional<std::string>("GET"));
}

TEST_CASE("api: POST /dev/token mints an access token bound to the page's key") {
  engine_process& e = shared_engine();
  http_client c(e.port());
  const std::string mo = fresh_msisdn(), mt = fresh_msisdn();
  // The client signs PoP tokens with test_device_key(): a token bound to its public half
  // is accepted everywhere, through the same verifier as any other client's.
  auto r = c.post("/dev/token", token_request("+" + mo, test_device_key().public_part().to_jwk_json(),
                                              ",\"deviceId\":\"browser-1\""));
  REQUIRE_200(r);
  CHECK(r.header("cache-control") == std::optional<std::string>("no-store"));
  CHECK(json_int(r.body, "/expiresIn") == std::optional<std::int64_t>(3600));
  CHECK(json_str(r.body, "/deviceId") == std::optional<std::string>("browser-1"));
  const auto tok = json_str(r.body, "/accessToken");
  REQUIRE(tok.has_value());
  auto started = c.post("/start", start_body(mo, mt, sdp("offer")), bearer(*tok));
  REQUIRE_200(started);
  const auto id = json_str(started.body, "/callId").value_or("");
  CHECK_200(c.get("/calls/" + id, bearer(*tok)));

  // Bound to another key, the same client's PoP tokens do not verify.
  const auto other = jose::private_key::generate_rsa(2048);
  r = c.post("/dev/token", token_request(mo, other.public_part().to_jwk_json()));
  REQUIRE_200(r);
  CHECK(json_str(r.body, "/deviceId").value_or("").rfind("web-", 0) == 0);
  CHECK_ERROR(c.get("/calls/" + id, bearer(json_str(r.body, "/accessToken").value_or(""))), 401, "POP_INVALID");
}

TEST_CASE("api: POST /dev/token refuses bad numbers and keys with 400 INVALID_FIELD") {
  http_client c(shared_engine().port());
  const std::string jwk = test_device_key().public_part().to_jwk_json();
  const auto ec = jose::private_key::generate_ec_p256().public_part().to_jwk_json();
  const std::string bad[] = {
      "",
      "[]",
      "{\"jwk\":" + jwk + "}",
      token_request("12ab", jwk),
      token_request("123", jwk),
      "{\"msisdn\":14250000001,\"jwk\":" + jwk + "}",
      "{\"msisdn\":\"14250000001\"}",
      token_request("14250000001", "\"not a key\""),
      token_request("14250000001", ec),
      token_request("14250000001", R"({"kty":"RSA","n":"AQAB","e":"AQAB"})"),
      token_request("14250000001", jwk.substr(0, jwk.size() - 1) + ",\"d\":\"AQAB\"}"),
      token_request("14250000001", jwk, ",\"deviceId\":\"\""),
      token_request("14250000001", jwk, ",\"deviceId\":\"" + std::string(129, 'x') + "\""),
  };
  for (const auto& body : bad) {
    CAPTURE(body);
    CHECK_ERROR(c.post("/dev/token", body), 400, "INVALID_FIELD");
  }
  CHECK_ERROR(c.get("/dev/token"), 405, "METHOD_NOT_ALLOWED");
}

TEST_CASE("api: POST /dev/token is 404 when the engine trusts a real issuer (--jwt-public-key)") {
  engine_process eng({"--jwt-public-key", "{root}/issuer.pem"}, false);
  {
    std::ofstream out(eng.root() / "issuer.pem");
    out << jose::private_key::generate_rsa(2048).public_part().to_pem();
  }
  eng.start();
  http_client c(eng.port());
  CHECK_ERROR(c.post("/dev/token", token_request("14250000001", test_device_key().public_part().to_jwk_json())), 404,
              "NOT_FOUND");
  CHECK(c.get("/phone/").status == 200);  // the page is still served; it needs tokens from elsewhere
}
