// Configured issuers (contract §2: RS256/ES256 PEM keys, repeatable, iss/aud when
// configured) and HTTP plumbing a client relies on (pipelining, query strings,
// garbage on a connection).
#include "schemas/pop_token.hpp"
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <simdjson.h>

#include "schemas/jose.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;
namespace jose = schemas::jose;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

std::string header(std::string_view alg, std::string_view kid) {
  return "{\"alg\":\"" + std::string(alg) + "\",\"typ\":\"JWT\",\"kid\":\"" + std::string(kid) + "\"}";
}

}  // namespace

TEST_CASE("auth: --jwt-public-key (RS256 and ES256, repeatable) with --jwt-issuer and --jwt-audience") {
  engine_process eng({"--jwt-public-key", "{root}/rsa-a.pem", "--jwt-public-key", "{root}/ec-b.pem", "--jwt-issuer",
                      "corp-issuer", "--jwt-audience", "yna-api"},
                     false);
  const auto rsa = jose::private_key::generate_rsa(2048);
  const auto ec = jose::private_key::generate_ec_p256();
  write_file(eng.root() / "rsa-a.pem", rsa.public_part().to_pem());
  write_file(eng.root() / "ec-b.pem", ec.public_part().to_pem());
  eng.start();
  http_client c(eng.port());

  const std::string mo = fresh_msisdn(), mt = fresh_msisdn();
  const std::int64_t now = now_seconds();
  const std::string aud = ",\"aud\":\"yna-api\"";
  const std::string good = claims(mo, "corp-issuer", now, now + 3600, aud);
  auto start = [&](const std::string& token) {
    return c.post("/start", start_body(mo, mt, sdp()), bearer(token));
  };

  CHECK_200(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "rsa-a"), good)));
  CHECK_200(start(jose::sign_jwt(ec, jose::alg::es256, header("ES256", "ec-b"), good)));
  // Key and algorithm must match the kid's key.
  CHECK_ERROR(start(jose::sign_jwt(ec, jose::alg::es256, header("ES256", "rsa-a"), good)), 401, "UNAUTHORIZED");
  CHECK_ERROR(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "ec-b"), good)), 401, "UNAUTHORIZED");
  CHECK_ERROR(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "nope"), good)), 401, "UNAUTHORIZED");
  // iss and aud, when configured, must match.
  CHECK_ERROR(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "rsa-a"),
                                   claims(mo, "yna-dev", now, now + 3600, aud))),
              401, "UNAUTHORIZED");
  CHECK_ERROR(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "rsa-a"),
                                   claims(mo, "corp-issuer", now, now + 3600))),
              401, "UNAUTHORIZED");
  CHECK_ERROR(start(jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "rsa-a"),
                                   claims(mo, "corp-issuer", now, now + 3600, ",\"aud\":\"other\""))),
              401, "UNAUTHORIZED");
  CHECK_ERROR(start(jose::sign_jwt(ec, jose::alg::es256, header("ES256", "ec-b"),
                                   claims(mo, "corp-issuer", now - 7200, now - 3600, aud))),
              401, "TOKEN_EXPIRED");
  // With keys configured, the development issuer is not trusted.
  CHECK_ERROR(start(eng.token({mo})), 401, "UNAUTHORIZED");
}

TEST_CASE("auth: an `aud` array containing the configured audience is accepted (RFC 7519 §4.1.3)") {
  engine_process eng({"--jwt-public-key", "{root}/k.pem", "--jwt-audience", "yna-api"}, false);
  const auto rsa = jose::private_key::generate_rsa(2048);
  write_file(eng.root() / "k.pem", rsa.public_part().to_pem());
  eng.start();
  http_client c(eng.port());
  const std::string mo = fresh_msisdn(), mt = fresh_msisdn();
  const std::int64_t now = now_seconds();
  const auto tok = jose::sign_jwt(rsa, jose::alg::rs256, header("RS256", "k"),
                                  claims(mo, "any", now, now + 3600, ",\"aud\":[\"other\",\"yna-api\"]"));
  CHECK_200(c.post("/start", start_body(mo, mt, sdp()), bearer(tok)));
}

TEST_CASE("http: pipelined requests are answered in order on one connection") {
  auto& eng = shared_engine();
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string body = start_body(mo.number, mt.number, sdp());
  std::string raw = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
  raw += "POST /start HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + mo.tok +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string target = "/calls/" + unknown_call_id();
  const std::string pop =
      schemas::build_request_pop(test_device_key(), "GET", target, "", "Bearer " + mo.tok, now_seconds());
  raw += "GET " + target + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + mo.tok +
         "\r\nX-Authorization: " + pop + "\r\n\r\n";
  raw += "DELETE /start HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
  const auto rs = raw_requests(eng.port(), raw, 4);
  REQUIRE(rs.size() == 4);
  CHECK(rs[0].status == 200);
  CHECK(rs[1].status == 200);
  CHECK(is_call_id(json_str(rs[1].body, "/callId").value_or("")));
  CHECK_ERROR(rs[2], 404, "CALL_NOT_FOUND");
  CHECK_ERROR(rs[3], 405, "METHOD_NOT_ALLOWED");
}

TEST_CASE("http: a query string does not change the route") {
  auto& eng = shared_engine();
  http_client c(eng.port());
  const test_call t = make_call(eng, c, "Initial");
  CHECK_EMPTY_OK(t.c->post("/ringing/" + t.id + "?trace=1", "{}", t.mt.auth()));
  auto g = c.get("/calls/" + t.id + "?fields=all", t.mo.auth());
  CHECK_200(g);
  CHECK(json_str(g.body, "/status") == std::optional<std::string>("Ringing"));
  CHECK(c.get("/healthz?probe=1").status == 200);
}

TEST_CASE("http: garbage on a connection is refused and the engine keeps serving") {
  auto& eng = shared_engine();
  for (const std::string& junk : {std::string("NOT HTTP AT ALL\r\n\r\n"), std::string("\x16\x03\x01\x02\x00\x01", 6) +
                                                                             std::string(100, '\0'),
                                 std::string("POST /start HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
                                 std::string("POST /start HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")}) {
    try {
      const response r = raw_request(eng.port(), junk, 5s);
      INFO("answered ", r.status, " ", r.body);
      CHECK(r.status >= 400);
      CHECK(r.status < 500);
    } catch (const std::exception& e) {
      MESSAGE("connection closed without an answer: ", e.what());  // also acceptable
    }
  }
  http_client c(eng.port());
  CHECK(c.get("/healthz").status == 200);
  const test_call t = make_call(eng, c, "Ringing");
  CHECK(t.status() == "Ringing");
}

TEST_CASE("log: the real binary's text lines start with an ISO 8601 UTC time; --log-format json lines parse") {
  const std::regex text_line(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (debug|info |warn |error) .+$)");
  {
    engine_process eng;
    eng.stop();
    std::istringstream lines(eng.stderr_tail(1000));
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      INFO(line);
      CHECK(std::regex_match(line, text_line));
      ++n;
    }
    CHECK(n >= 3);  // at least: recovered, listening, stopped
  }
  {
    engine_process eng({"--log-format", "json"});
    eng.stop();
    std::istringstream lines(eng.stderr_tail(1000));
    int n = 0;
    simdjson::dom::parser p;
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      INFO(line);
      auto doc = p.parse(line);
      REQUIRE(doc.error() == simdjson::SUCCESS);
      std::int64_t ts = 0;
      CHECK(doc["ts"].get(ts) == simdjson::SUCCESS);
      CHECK(ts > 1700000000000);  // epoch milliseconds
      std::string_view level, msg;
      CHECK(doc["level"].get(level) == simdjson::SUCCESS);
      CHECK(doc["msg"].get(msg) == simdjson::SUCCESS);
      ++n;
    }
    CHECK(n >= 3);
  }
}
