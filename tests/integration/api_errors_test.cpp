// Every applicable reasonCode over real HTTP (contract §2, §3), and the order in which
// the engine checks: authentication (401) → input (400) → lookup (404) → party (403)
// → role and state (400). Each error must be an ErrorInfo with application/json, and a
// rejected request must leave the call as it was.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include "schemas/jose.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {

const char* const sdp_endpoints[] = {"connected", "hold", "acceptHold", "resume", "acceptResume", "renegotiate"};
const char* const all_post_endpoints[] = {"inProgress", "proceeding", "ringing",      "connected",  "hold",
                                          "acceptHold", "resume",     "acceptResume", "renegotiate"};

}  // namespace

TEST_CASE("errors: 400 INVALID_JSON") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  for (const char* body : {"{\"to\":", "not json", "[]", "[1,2]", "\"a string\"", "42", "null", "{\"to\":\"1\",}"}) {
    CAPTURE(body);
    CHECK_ERROR(c.post("/start", body, mo.auth()), 400, "INVALID_JSON");
  }
  const test_call t = make_call(eng, c, "Ringing");
  const std::string before = t.view();
  for (const char* ep : all_post_endpoints) {
    CAPTURE(ep);
    const party& p = std::string_view(ep) == "hold" ? t.mo : t.mt;
    CHECK_ERROR(t.post(p, ep, "{\"sdp\":"), 400, "INVALID_JSON");
    CHECK_ERROR(t.post(p, ep, "[\"v=0\"]"), 400, "INVALID_JSON");
  }
  CHECK(t.view() == before);
}

TEST_CASE("errors: 400 MISSING_FIELD") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string s = json_quote(sdp());
  const std::string from = json_quote(mo.number), to = json_quote(mt.number);
  CHECK_ERROR(c.post("/start", "{\"from\":" + from + ",\"sdp\":" + s + "}", mo.auth()), 400, "MISSING_FIELD");
  CHECK_ERROR(c.post("/start", "{\"to\":" + to + ",\"sdp\":" + s + "}", mo.auth()), 400, "MISSING_FIELD");
  CHECK_ERROR(c.post("/start", "{\"to\":" + to + ",\"from\":" + from + "}", mo.auth()), 400, "MISSING_FIELD");
  CHECK_ERROR(c.post("/start", "{}", mo.auth()), 400, "MISSING_FIELD");

  // Walk one call along; at each step the sdp-less request fails and the full one passes.
  const test_call t = make_call(eng, c, "Ringing");
  struct step {
    const char* ep;
    bool by_mo;
  };
  for (const step st : {step{"connected", false}, step{"hold", true}, step{"acceptHold", false}, step{"resume", true},
                        step{"acceptResume", false}, step{"renegotiate", false}, step{"renegotiate", true}}) {
    CAPTURE(st.ep);
    const party& p = st.by_mo ? t.mo : t.mt;
    const std::string before = t.view();
    CHECK_ERROR(t.post(p, st.ep, "{}"), 400, "MISSING_FIELD");
    CHECK_ERROR(t.post(p, st.ep, "{\"other\":\"x\"}"), 400, "MISSING_FIELD");
    CHECK(t.view() == before);
    CHECK_EMPTY_OK(t.post(p, st.ep, sdp_body(sdp(st.ep))));
  }
  CHECK(t.status() == "Connected");
}

namespace {

// A token from the development key with hand-made header and claims.
std::string crafted(const engine_process& eng, std::string_view header, std::string_view payload) {
  return schemas::jose::sign_jwt(eng.issuer().key, schemas::jose::alg::rs256, header, payload);
}

}  // namespace

TEST_CASE("errors: 400 INVALID_FIELD") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string s = json_quote(sdp()), from = json_quote(mo.number), to = json_quote(mt.number);
  const double active0 = active_calls(c);

  SUBCASE("wrong JSON types") {
    for (const std::string& body : {
             "{\"to\":" + mt.number + ",\"from\":" + from + ",\"sdp\":" + s + "}",  // "to": 14250000123
             "{\"to\":" + to + ",\"from\":true,\"sdp\":" + s + "}",
             "{\"to\":" + to + ",\"from\":" + from + ",\"sdp\":5}",
             "{\"to\":" + to + ",\"from\":" + from + ",\"sdp\":{\"v\":0}}",
             "{\"to\":[" + to + "],\"from\":" + from + ",\"sdp\":" + s + "}",
             "{\"to\":" + to + ",\"from\":" + from + ",\"sdp\":" + s + ",\"clientCorrelator\":7}",
         }) {
      CAPTURE(body);
      CHECK_ERROR(c.post("/start", body, mo.auth()), 400, "INVALID_FIELD");
    }
    CHECK(active_calls(c) == active0);
    const test_call t = make_call(eng, c, "Ringing");
    CHECK_ERROR(t.post(t.mt, "connected", "{\"sdp\":123}"), 400, "INVALID_FIELD");
    CHECK_ERROR(t.post(t.mt, "ringing", "{\"sdp\":false}"), 400, "INVALID_FIELD");
    CHECK_ERROR(t.post(t.mt, "inProgress", "{\"sdp\":[]}"), 400, "INVALID_FIELD");
    CHECK(t.status() == "Ringing");
  }
  SUBCASE("from == to, also after dropping '+'") {
    CHECK_ERROR(c.post("/start", start_body(mo.number, mo.number, sdp()), mo.auth()), 400, "INVALID_FIELD");
    CHECK_ERROR(c.post("/start", start_body("+" + mo.number, mo.number, sdp()), mo.auth()), 400, "INVALID_FIELD");
    CHECK(active_calls(c) == active0);
  }
  SUBCASE("clientCorrelator over 256 characters or not printable") {
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp(), std::string(257, 'k')), mo.auth()), 400,
                "INVALID_FIELD");
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp(), "tab\there"), mo.auth()), 400,
                "INVALID_FIELD");
    CHECK(active_calls(c) == active0);
  }
}

TEST_CASE("errors: 400 INVALID_MSISDN") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const double active0 = active_calls(c);
  for (const std::string bad : {"12345", "1234567890123456", "1425555O100", "+", "", "++14255550100",
                                "1425-555-0100", " 14255550100", "14255550100 ", "tel:+14255550100", "-14255550100"}) {
    CAPTURE(bad);
    CHECK_ERROR(c.post("/start", start_body(mo.number, bad, sdp()), mo.auth()), 400, "INVALID_MSISDN");
    // from: input (400) is checked before ownership (403).
    CHECK_ERROR(c.post("/start", start_body(bad, mt.number, sdp()), mo.auth()), 400, "INVALID_MSISDN");
  }
  CHECK(active_calls(c) == active0);
}

TEST_CASE("errors: 400 INVALID_SDP") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string bad_sdps[] = {
      "hello",
      "",
      "o=- 1 1 IN IP4 127.0.0.1\r\nv=0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",  // does not start v=0
      "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",                             // no o=
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",         // no s=
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n",           // no t=
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",                         // no m=
  };
  const double active0 = active_calls(c);
  for (const auto& bad : bad_sdps) {
    CAPTURE(bad);
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, bad), mo.auth()), 400, "INVALID_SDP");
  }
  CHECK(active_calls(c) == active0);

  const test_call t = make_call(eng, c, "Ringing");
  const test_call conn = make_call(eng, c, "Connected");
  for (const auto& bad : bad_sdps) {
    CAPTURE(bad);
    CHECK_ERROR(t.post(t.mt, "connected", sdp_body(bad)), 400, "INVALID_SDP");
    CHECK_ERROR(conn.post(conn.mo, "hold", sdp_body(bad)), 400, "INVALID_SDP");
    CHECK_ERROR(conn.post(conn.mt, "renegotiate", sdp_body(bad)), 400, "INVALID_SDP");
  }
  // sdp is optional on the early endpoints, but when given it must be valid.
  CHECK_ERROR(t.post(t.mt, "inProgress", sdp_body("hello")), 400, "INVALID_SDP");
  CHECK_ERROR(t.post(t.mt, "ringing", sdp_body("hello")), 400, "INVALID_SDP");
  CHECK(t.status() == "Ringing");
  CHECK(conn.status() == "Connected");
  CHECK(!json_has(conn.view(), "/pendingOffer"));
}

TEST_CASE("errors: 413 BODY_TOO_LARGE over 64 KiB") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::size_t limit = 65536;

  // A valid start of exactly 64 KiB passes the size check (its sdp is under 64 KiB).
  std::string big = sdp("big");
  const std::size_t base = start_body(mo.number, mt.number, big + "a=x:\r\n").size();
  big += "a=x:" + std::string(limit - base, 'y') + "\r\n";
  std::string body = start_body(mo.number, mt.number, big);
  REQUIRE(body.size() == limit);
  CHECK_200(c.post("/start", body, mo.auth()));

  // One byte more is 413.
  big.insert(big.size() - 2, "y");
  body = start_body(mo.number, mt.number, big);
  REQUIRE(body.size() == limit + 1);
  CHECK_ERROR(c.post("/start", body, mo.auth()), 413, "BODY_TOO_LARGE");
  CHECK_ERROR(c.post("/start", std::string(1 << 20, ' '), mo.auth()), 413, "BODY_TOO_LARGE");

  const test_call t = make_call(eng, c, "Ringing");
  big.insert(big.size() - 2, std::string(limit + 1 - sdp_body(big).size(), 'y'));
  REQUIRE(sdp_body(big).size() == limit + 1);
  CHECK_ERROR(t.post(t.mt, "connected", sdp_body(big)), 413, "BODY_TOO_LARGE");
  CHECK(t.status() == "Ringing");

  SUBCASE("chunked body over the limit") {
    std::string raw = "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + mo.tok +
                      "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 10; ++i) raw += "1f40\r\n" + std::string(8000, ' ') + "\r\n";
    raw += "0\r\n\r\n";
    CHECK_ERROR(raw_request(eng.port(), raw), 413, "BODY_TOO_LARGE");
  }
  SUBCASE("declared Content-Length over the limit is refused without waiting for the body") {
    const std::string raw = "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + mo.tok +
                            "\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{";
    CHECK_ERROR(raw_request(eng.port(), raw, 5s), 413, "BODY_TOO_LARGE");
  }
  // Still serving afterwards.
  http_client fresh(eng.port());
  CHECK(fresh.get("/healthz").status == 200);
}

TEST_CASE("errors: 401 UNAUTHORIZED and TOKEN_EXPIRED") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string body = start_body(mo.number, mt.number, sdp());
  const std::int64_t now = now_seconds();
  auto start_with = [&](header_list h) { return c.post("/start", body, h); };

  SUBCASE("no Authorization header") { CHECK_ERROR(start_with({}), 401, "UNAUTHORIZED"); }
  SUBCASE("garbage") {
    for (const char* v : {"Bearer garbage", "Bearer ", "Bearer a.b.c", "Bearer ...", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA"}) {
      CAPTURE(v);
      CHECK_ERROR(start_with({{"Authorization", v}}), 401, "UNAUTHORIZED");
    }
  }
  SUBCASE("wrong scheme, or no scheme") {
    CHECK_ERROR(start_with({{"Authorization", "Basic dXNlcjpwYXNz"}}), 401, "UNAUTHORIZED");
    CHECK_ERROR(start_with({{"Authorization", "Token " + mo.tok}}), 401, "UNAUTHORIZED");
    CHECK_ERROR(start_with({{"Authorization", mo.tok}}), 401, "UNAUTHORIZED");
  }
  SUBCASE("signed by another key (same kid and iss)") {
    CHECK_ERROR(start_with(bearer(foreign_token({mo.number}))), 401, "UNAUTHORIZED");
  }
  SUBCASE("alg none and HS256") {
    const std::string payload = claims(mo.number, "yna-dev", now, now + 3600);
    CHECK_ERROR(start_with(bearer(compact_jwt(R"({"alg":"none","typ":"JWT"})", payload, ""))), 401, "UNAUTHORIZED");
    CHECK_ERROR(start_with(bearer(compact_jwt(R"({"alg":"none","typ":"JWT","kid":"dev"})", payload, ""))), 401,
                "UNAUTHORIZED");
    CHECK_ERROR(start_with(bearer(compact_jwt(R"({"alg":"HS256","typ":"JWT","kid":"dev"})", payload,
                                              std::string(32, '\x42')))),
                401, "UNAUTHORIZED");
  }
  SUBCASE("unknown kid, wrong iss, nbf in the future (dev key signature)") {
    CHECK_ERROR(start_with(bearer(crafted(eng, R"({"alg":"RS256","typ":"JWT","kid":"other"})",
                                          claims(mo.number, "yna-dev", now, now + 3600)))),
                401, "UNAUTHORIZED");
    CHECK_ERROR(start_with(bearer(crafted(eng, R"({"alg":"RS256","typ":"JWT","kid":"dev"})",
                                          claims(mo.number, "someone-else", now, now + 3600)))),
                401, "UNAUTHORIZED");
    CHECK_ERROR(start_with(bearer(crafted(eng, R"({"alg":"RS256","typ":"JWT","kid":"dev"})",
                                          claims(mo.number, "yna-dev", now, now + 3600,
                                                 ",\"nbf\":" + std::to_string(now + 600))))),
                401, "UNAUTHORIZED");
    // nbf inside the 30 s leeway is accepted.
    CHECK_200(start_with(bearer(crafted(eng, R"({"alg":"RS256","typ":"JWT","kid":"dev"})",
                                        claims(mo.number, "yna-dev", now, now + 3600,
                                               ",\"nbf\":" + std::to_string(now + 10))))));
    // Control: the same construction with valid claims is accepted.
    CHECK_200(start_with(bearer(crafted(eng, R"({"alg":"RS256","typ":"JWT","kid":"dev"})",
                                        claims(mo.number, "yna-dev", now, now + 3600)))));
  }
  SUBCASE("expired: TOKEN_EXPIRED; inside the 30 s leeway: accepted") {
    CHECK_ERROR(start_with(bearer(eng.token_at({mo.number}, now - 7200, now - 3600))), 401, "TOKEN_EXPIRED");
    CHECK_ERROR(start_with(bearer(eng.token_at({mo.number}, now - 600, now - 60))), 401, "TOKEN_EXPIRED");
    CHECK_200(start_with(bearer(eng.token_at({mo.number}, now - 600, now - 10))));
  }
  SUBCASE("every call endpoint and GET /calls") {
    const test_call t = make_call(eng, c, "Connected");
    const std::string before = t.view();
    const std::string expired = eng.token_at({t.mo.number, t.mt.number}, now - 7200, now - 3600);
    for (const char* ep : all_post_endpoints) {
      CAPTURE(ep);
      CHECK_ERROR(c.post("/" + std::string(ep) + "/" + t.id, sdp_body(sdp()), {}), 401, "UNAUTHORIZED");
      CHECK_ERROR(c.post("/" + std::string(ep) + "/" + t.id, sdp_body(sdp()), bearer(expired)), 401, "TOKEN_EXPIRED");
    }
    CHECK_ERROR(c.del("/end/" + t.id, {}), 401, "UNAUTHORIZED");
    CHECK_ERROR(c.del("/end/" + t.id, bearer(expired)), 401, "TOKEN_EXPIRED");
    CHECK_ERROR(c.get("/calls/" + t.id, {}), 401, "UNAUTHORIZED");
    CHECK_ERROR(c.get("/calls/" + t.id, bearer(foreign_token({t.mo.number}))), 401, "UNAUTHORIZED");
    CHECK(t.view() == before);
  }
}

TEST_CASE("auth: the Bearer scheme name is case-insensitive (RFC 7235 §2.1)") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  CHECK_200(c.post("/start", start_body(mo.number, mt.number, sdp()), {{"Authorization", "bearer " + mo.tok}}));
  CHECK_200(c.post("/start", start_body(mo.number, mt.number, sdp()), {{"Authorization", "BEARER " + mo.tok}}));
}

TEST_CASE("errors: 403 FORBIDDEN") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party stranger = new_party(eng, "eve-dev");

  SUBCASE("/start from a number the token does not own") {
    const party mo = new_party(eng);
    const party mt = new_party(eng);
    const double active0 = active_calls(c);
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp()), mt.auth()), 403, "FORBIDDEN");
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp()), stranger.auth()), 403, "FORBIDDEN");
    CHECK(active_calls(c) == active0);
  }
  SUBCASE("a stranger on every endpoint of a call, and on GET /calls") {
    for (const char* state : {"Ringing", "Connected", "Connected+hold(MO)", "Hold(MO)"}) {
      CAPTURE(state);
      const test_call t = make_call(eng, c, state);
      const std::string before = t.view();
      for (const char* ep : all_post_endpoints) {
        CAPTURE(ep);
        CHECK_ERROR(t.post(stranger, ep, sdp_body(sdp())), 403, "FORBIDDEN");
      }
      CHECK_ERROR(t.end(stranger), 403, "FORBIDDEN");
      CHECK_ERROR(t.get(stranger), 403, "FORBIDDEN");
      CHECK(t.view() == before);
    }
  }
  SUBCASE("a stranger on an ended call") {
    const test_call t = make_call(eng, c, "Terminated");
    CHECK_ERROR(t.end(stranger), 403, "FORBIDDEN");
    CHECK_ERROR(t.get(stranger), 403, "FORBIDDEN");
    CHECK_ERROR(t.post(stranger, "ringing", "{}"), 403, "FORBIDDEN");
  }
}

TEST_CASE("errors: 404 CALL_NOT_FOUND and NOT_FOUND") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party p = new_party(eng);
  const std::string id = unknown_call_id();

  SUBCASE("unknown callId on every endpoint") {
    for (const char* ep : all_post_endpoints) {
      CAPTURE(ep);
      CHECK_ERROR(c.post("/" + std::string(ep) + "/" + id, sdp_body(sdp()), p.auth()), 404, "CALL_NOT_FOUND");
    }
    CHECK_ERROR(c.del("/end/" + id, p.auth()), 404, "CALL_NOT_FOUND");
    CHECK_ERROR(c.get("/calls/" + id, p.auth()), 404, "CALL_NOT_FOUND");
  }
  SUBCASE("unknown paths") {
    const std::pair<const char*, std::string> paths[] = {
        {"GET", "/"},           {"GET", "/nope"},         {"POST", "/start/extra"}, {"POST", "/ringing"},
        {"POST", "/ringing/"},  {"GET", "/calls"},        {"GET", "/calls/"},       {"POST", "/Start"},
        {"GET", "/calls/" + id + "/x"}, {"POST", "/ring/" + id}, {"DELETE", "/end"}, {"GET", "/healthz/x"},
    };
    for (const auto& [method, path] : paths) {
      CAPTURE(method);
      CAPTURE(path);
      CHECK_ERROR(c.request(method, path, std::string_view(method) == "GET" ? "" : "{}", p.auth()), 404, "NOT_FOUND");
      CHECK_ERROR(c.request(method, path, std::string_view(method) == "GET" ? "" : "{}", {}), 404, "NOT_FOUND");
    }
  }
}

TEST_CASE("errors: 405 METHOD_NOT_ALLOWED on a known path") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Ringing");
  const std::string before = t.view();
  struct wrong {
    const char* method;
    std::string path;
    const char* allowed;
  };
  const wrong cases[] = {
      {"GET", "/start", "POST"},           {"PUT", "/start", "POST"},
      {"DELETE", "/start", "POST"},        {"POST", "/end/" + t.id, "DELETE"},
      {"GET", "/end/" + t.id, "DELETE"},   {"DELETE", "/ringing/" + t.id, "POST"},
      {"GET", "/hold/" + t.id, "POST"},    {"PATCH", "/connected/" + t.id, "POST"},
      {"PUT", "/renegotiate/" + t.id, "POST"}, {"POST", "/calls/" + t.id, "GET"},
      {"DELETE", "/calls/" + t.id, "GET"}, {"POST", "/healthz", "GET"},
      {"POST", "/readyz", "GET"},          {"DELETE", "/metrics", "GET"},
  };
  for (const auto& w : cases) {
    CAPTURE(w.method);
    CAPTURE(w.path);
    for (bool with_token : {true, false}) {
      CAPTURE(with_token);
      auto r = c.request(w.method, w.path, "{}", with_token ? t.mt.auth() : header_list{});
      CHECK_ERROR(r, 405, "METHOD_NOT_ALLOWED");
      // RFC 9110 §15.5.6: a 405 carries Allow.
      CHECK(r.header("allow").value_or("").find(w.allowed) != std::string::npos);
    }
  }
  CHECK(t.view() == before);
}

TEST_CASE("errors: role and state rules over HTTP (400)") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  struct rule {
    const char* state;
    const char* ep;
    bool by_mo;
    const char* code;
  };
  const rule rules[] = {
      // INVALID_STATE
      {"Ringing", "hold", true, "INVALID_STATE"},
      {"Ringing", "acceptHold", false, "INVALID_STATE"},
      {"Initial", "renegotiate", true, "INVALID_STATE"},
      {"Proceeding", "resume", true, "INVALID_STATE"},
      {"Connected", "connected", false, "INVALID_STATE"},
      {"Connected", "ringing", false, "INVALID_STATE"},
      {"Connected", "resume", true, "INVALID_STATE"},
      {"Connected", "acceptResume", false, "INVALID_STATE"},
      {"Hold(MO)", "hold", false, "INVALID_STATE"},
      {"Hold(MO)", "acceptHold", false, "INVALID_STATE"},
      // WRONG_PARTY
      {"Initial", "ringing", true, "WRONG_PARTY"},
      {"Ringing", "connected", true, "WRONG_PARTY"},
      {"InProgress", "proceeding", true, "WRONG_PARTY"},
      {"Connected+hold(MO)", "acceptHold", true, "WRONG_PARTY"},
      {"Hold(MO)", "resume", false, "WRONG_PARTY"},
      {"Hold+resume(MO)", "acceptResume", true, "WRONG_PARTY"},
      // OFFER_PENDING
      {"Connected+hold(MO)", "hold", true, "OFFER_PENDING"},
      {"Connected+hold(MO)", "hold", false, "OFFER_PENDING"},
      {"Connected+hold(MO)", "renegotiate", false, "OFFER_PENDING"},
      {"Connected+reneg(MO)", "renegotiate", true, "OFFER_PENDING"},
      {"Connected+reneg(MO)", "hold", false, "OFFER_PENDING"},
      {"Hold+resume(MO)", "renegotiate", false, "OFFER_PENDING"},
      // NO_OFFER_PENDING
      {"Connected", "acceptHold", false, "NO_OFFER_PENDING"},
      {"Connected+reneg(MO)", "acceptHold", false, "NO_OFFER_PENDING"},
      {"Hold(MO)", "acceptResume", false, "NO_OFFER_PENDING"},
      // CALL_ENDED
      {"Terminated", "ringing", false, "CALL_ENDED"},
      {"Terminated", "connected", false, "CALL_ENDED"},
      {"Terminated", "hold", true, "CALL_ENDED"},
      {"Terminated", "renegotiate", true, "CALL_ENDED"},
      {"Terminated", "acceptResume", false, "CALL_ENDED"},
  };
  for (const auto& r : rules) {
    CAPTURE(r.state);
    CAPTURE(r.ep);
    CAPTURE(r.by_mo);
    const test_call t = make_call(eng, c, r.state);
    const std::string before = t.view();
    CHECK_ERROR(t.post(r.by_mo ? t.mo : t.mt, r.ep, sdp_body(sdp("rule"))), 400, r.code);
    CHECK(t.view() == before);
  }
  SUBCASE("an ended call can still be read by its parties") {
    const test_call t = make_call(eng, c, "Terminated");
    CHECK_200(t.get(t.mt));
  }
}

TEST_CASE("errors: order of checks 401 → 400 → 404 → 403 → state") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const party stranger = new_party(eng, "eve-dev");
  const std::string unknown = unknown_call_id();
  const std::int64_t now = now_seconds();

  SUBCASE("authentication first") {
    CHECK_ERROR(c.post("/start", "{bad json", {}), 401, "UNAUTHORIZED");
    CHECK_ERROR(c.post("/ringing/" + unknown, "{bad json", {}), 401, "UNAUTHORIZED");
    CHECK_ERROR(c.post("/connected/" + unknown, "{}", bearer(eng.token_at({stranger.number}, now - 7200, now - 3600))),
                401, "TOKEN_EXPIRED");
    CHECK_ERROR(c.post("/start", "{}", {{"x-transaction-id", "nope"}}), 401, "UNAUTHORIZED");
    CHECK_ERROR(c.get("/calls/" + unknown, {{"x-transaction-id", "nope"}}), 401, "UNAUTHORIZED");
  }
  SUBCASE("input before lookup") {
    CHECK_ERROR(c.post("/ringing/" + unknown, "{bad json", stranger.auth()), 400, "INVALID_JSON");
    CHECK_ERROR(c.post("/connected/" + unknown, "{}", stranger.auth()), 400, "MISSING_FIELD");
    CHECK_ERROR(c.post("/hold/" + unknown, sdp_body("nope"), stranger.auth()), 400, "INVALID_SDP");
    CHECK_ERROR(c.del("/end/" + unknown, stranger.auth({{"x-transaction-id", "nope"}})), 400,
                "INVALID_TRANSACTION_ID");
    CHECK_ERROR(c.get("/calls/" + unknown, stranger.auth({{"x-transaction-id", "nope"}})), 400,
                "INVALID_TRANSACTION_ID");
  }
  SUBCASE("input before party: /start from a number not owned, with bad input") {
    const party mt = new_party(eng);
    CHECK_ERROR(c.post("/start", start_body(fresh_msisdn(), mt.number, "not sdp"), stranger.auth()), 400,
                "INVALID_SDP");
    CHECK_ERROR(c.post("/start", start_body(fresh_msisdn(), "123", sdp()), stranger.auth()), 400, "INVALID_MSISDN");
  }
  SUBCASE("lookup before party") {
    CHECK_ERROR(c.post("/ringing/" + unknown, "{}", stranger.auth()), 404, "CALL_NOT_FOUND");
    CHECK_ERROR(c.get("/calls/" + unknown, stranger.auth()), 404, "CALL_NOT_FOUND");
  }
  SUBCASE("party before state") {
    const test_call t = make_call(eng, c, "Ringing");
    CHECK_ERROR(t.post(stranger, "hold", sdp_body(sdp())), 403, "FORBIDDEN");          // wrong state
    CHECK_ERROR(t.post(stranger, "acceptResume", sdp_body(sdp())), 403, "FORBIDDEN");  // wrong state
    CHECK_ERROR(t.post(stranger, "hold", "{bad json"), 400, "INVALID_JSON");           // input still first
    const test_call done = make_call(eng, c, "Terminated");
    CHECK_ERROR(done.post(stranger, "ringing", "{}"), 403, "FORBIDDEN");  // before CALL_ENDED
  }
  SUBCASE("input before state for a party") {
    const test_call done = make_call(eng, c, "Terminated");
    CHECK_ERROR(done.post(done.mt, "connected", "{}"), 400, "MISSING_FIELD");
    CHECK_ERROR(done.post(done.mt, "connected", "[]"), 400, "INVALID_JSON");
    const test_call t = make_call(eng, c, "Ringing");
    CHECK_ERROR(t.post(t.mo, "hold", "{}"), 400, "MISSING_FIELD");  // not INVALID_STATE
  }
}
