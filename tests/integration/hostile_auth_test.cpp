// Hostile clients, tokens and PoP (contract §3a, issue 14 points 2, 4, 7, 8 and 10), over
// the real binary: bounded work per PoP (ehts names each item once; a replayed jti is
// refused before the digest), jtis remembered per device key with a share each, device
// keys of sane size only, rate limits per subject with a table that forgets the least
// recently used instead of refusing newcomers, bounded access-token lifetimes, and flags
// that fail as usage errors.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <openssl/rand.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "schemas/base64url.hpp"
#include "schemas/dev_issuer.hpp"
#include "schemas/jose.hpp"
#include "schemas/pop_token.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;
namespace jose = schemas::jose;

namespace {

// A device with a key of its own: its token's cnf.jwk is that key.
struct device {
  std::string number;
  std::string tok;
  std::shared_ptr<jose::private_key> key;
};

device new_device(const engine_process& eng, std::string number, std::string device_id = "dev-1") {
  device d{std::move(number), {}, std::make_shared<jose::private_key>(jose::private_key::generate_rsa(2048))};
  schemas::access_claims c;
  c.sub = "it-" + d.number;
  c.msisdns = {d.number};
  c.device_id = std::move(device_id);
  c.iat = now_seconds();
  c.exp = c.iat + 3600;
  c.cnf_jwk_json = d.key->public_part().to_jwk_json();
  d.tok = schemas::mint_access_token(eng.issuer(), c);
  return d;
}

// Headers for `method uri` with `body`, PoP signed by the device's key.
header_list signed_by(const device& d, std::string_view method, std::string_view uri, std::string_view body,
                      std::string jti = {}) {
  const std::string auth = "Bearer " + d.tok;
  schemas::pop_claims v{{"Authorization", auth}, {"uri", std::string(uri)}, {"http-method", std::string(method)}};
  if (!body.empty()) v.emplace_back("body", std::string(body));
  const auto now = now_seconds();
  return {{"Authorization", auth}, {"X-Authorization", schemas::build_pop_token(*d.key, v, now, now + 120, std::move(jti))}};
}

// An access token signed by the engine's development issuer with this exact payload.
std::string issuer_signed(const engine_process& eng, std::string_view payload_json) {
  const std::string header = R"({"alg":"RS256","typ":"JWT","kid":")" + eng.issuer().kid + "\"}";
  const std::string input = schemas::base64url_encode(header) + "." + schemas::base64url_encode(payload_json);
  return input + "." + schemas::base64url_encode(jose::sign(eng.issuer().key, jose::alg::rs256, input));
}

std::string random_bytes(std::size_t n, bool top_bit, bool odd) {
  std::string s(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
  if (top_bit) s.front() = static_cast<char>(s.front() | 0x80);
  if (odd) s.back() = static_cast<char>(s.back() | 0x01);
  return s;
}

// CPU seconds (user + system) the process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

TEST_CASE("hostile auth: an ehts that repeats body is refused at once; a replayed jti before its digest") {
  engine_process eng({"--rate-limit", "0", "--rate-limit-sub", "0"});
  const device d = new_device(eng, fresh_msisdn());
  http_client c(eng.port());
  const std::string uri = "/ringing/" + unknown_call_id();
  const std::string body = "{\"sdp\":\"" + std::string(64000, 'x') + "\"}";

  // 810 × body: 52 MB to hash per request if the engine did what ehts asks.
  const std::string auth = "Bearer " + d.tok;
  schemas::pop_claims v{{"Authorization", auth}, {"uri", uri}, {"http-method", "POST"}};
  for (int i = 0; i < 810; ++i) v.emplace_back("body", body);
  const auto now = now_seconds();
  const std::string heavy = schemas::build_pop_token(*d.key, v, now, now + 120);
  const int n = 100;
  const double cpu0 = cpu_seconds(eng.pid());
  for (int i = 0; i < n; ++i) {
    auto r = c.post(uri, body, {{"Authorization", auth}, {"X-Authorization", heavy}});
    REQUIRE(r.status == 401);
    CHECK(reason_code_of(r.body) == "POP_INVALID");
  }
  const double per_request_ms = (cpu_seconds(eng.pid()) - cpu0) * 1000 / n;
  INFO("engine CPU per refused request: ", per_request_ms, " ms");
  CHECK(per_request_ms < (load_scale() < 1 ? 20.0 : 1.0));  // sanitizer builds (scale < 1) run slower

  // 17 distinct names, or one name twice in another case: refused too.
  schemas::pop_claims many{{"Authorization", auth}, {"uri", uri}, {"http-method", "POST"}, {"body", body}};
  for (int i = 0; i < 13; ++i) many.emplace_back("x-h" + std::to_string(i), "v");
  header_list hs{{"Authorization", auth}, {"X-Authorization", schemas::build_pop_token(*d.key, many, now, now + 120)}};
  for (int i = 0; i < 13; ++i) hs.emplace_back("x-h" + std::to_string(i), "v");
  CHECK(reason_code_of(c.post(uri, body, hs).body) == "POP_INVALID");
  schemas::pop_claims twice{{"Authorization", auth}, {"uri", uri}, {"URI", uri}, {"http-method", "POST"}, {"body", body}};
  CHECK(reason_code_of(c.post(uri, body, {{"Authorization", auth},
                                          {"X-Authorization", schemas::build_pop_token(*d.key, twice, now, now + 120)}})
                           .body) == "POP_INVALID");

  // A PoP that verified once is a replay whatever the request now is: POP_REPLAYED
  // (the jti is checked before the digest), not an edts mismatch.
  auto ok = signed_by(d, "POST", uri, "{}");
  CHECK(c.post(uri, "{}", ok).status == 404);
  auto again = c.post(uri, "{\"changed\":1}", ok);
  CHECK(again.status == 401);
  CHECK(reason_code_of(again.body) == "POP_REPLAYED");
}

TEST_CASE("hostile auth: PoP jtis are remembered per device key, each key with its own share") {
  engine_process eng({"--pop-jti-per-key", "20", "--rate-limit", "0", "--rate-limit-sub", "0"});
  const device flood = new_device(eng, fresh_msisdn());
  const device other = new_device(eng, fresh_msisdn());
  http_client c(eng.port());
  const std::string uri = "/calls/" + unknown_call_id();

  int found = 0, limited = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = c.get(uri, signed_by(flood, "GET", uri, ""));
    if (r.status == 404) ++found;
    if (r.status == 429) {
      ++limited;
      CHECK(r.header("retry-after").has_value());
      CHECK(reason_code_of(r.body) == "TOO_MANY_REQUESTS");
    }
  }
  CHECK(found == 20);    // its share
  CHECK(limited == 10);  // then that key alone is refused
  for (int i = 0; i < 10; ++i) CHECK(c.get(uri, signed_by(other, "GET", uri, "")).status == 404);

  // One key's jti is no replay for another key.
  const device a = new_device(eng, fresh_msisdn()), b = new_device(eng, fresh_msisdn());
  CHECK(c.get(uri, signed_by(a, "GET", uri, "", "shared-jti-1")).status == 404);
  auto rb = c.get(uri, signed_by(b, "GET", uri, "", "shared-jti-1"));
  CHECK(rb.status == 404);
  CHECK(reason_code_of(rb.body) != "POP_REPLAYED");
  // ... while the same key replaying it is.
  CHECK(reason_code_of(c.get(uri, signed_by(a, "GET", uri, "", "shared-jti-1")).body) == "POP_REPLAYED");

  const auto m = c.get("/metrics").body;
  CHECK(metric_value(m, "yna_pop_jtis").value_or(0) >= 22);
  CHECK(metric_value(m, "yna_pop_keys").value_or(0) >= 3);
  CHECK(metric_value(m, "yna_tokens_cached").value_or(0) >= 4);  // the four devices' tokens
}

TEST_CASE("hostile auth: a cnf.jwk that is not RSA 2048-4096 bits with e = 65537 is 401") {
  engine_process eng;
  http_client c(eng.port());
  const std::string mo = fresh_msisdn(), mt = fresh_msisdn();
  auto jwk = [](const std::string& n, const std::string& e) {
    return R"({"kty":"RSA","n":")" + schemas::base64url_encode(n) + R"(","e":")" + schemas::base64url_encode(e) + "\"}";
  };
  struct odd_key {
    const char* name;
    std::string jwk;
  };
  const std::vector<odd_key> keys = {
      {"a 3070-bit exponent", jwk(random_bytes(512, true, true), random_bytes(384, false, true).substr(0, 384))},
      {"e = 3", jwk(random_bytes(256, true, true), std::string("\x03", 1))},
      {"an 8192-bit modulus", jwk(random_bytes(1024, true, true), std::string("\x01\x00\x01", 3))},
      {"an EC key", jose::private_key::generate_ec_p256().public_part().to_jwk_json()},
  };
  for (const auto& k : keys) {
    CAPTURE(k.name);
    schemas::access_claims cl;
    cl.sub = "odd-key";
    cl.msisdns = {mo};
    cl.iat = now_seconds();
    cl.exp = cl.iat + 600;
    cl.cnf_jwk_json = k.jwk;
    auto r = c.post("/start", start_body(mo, mt, sdp()), bearer(schemas::mint_access_token(eng.issuer(), cl)));
    CHECK(r.status == 401);
    CHECK(reason_code_of(r.body) == "UNAUTHORIZED");
  }
  // A 4096-bit device key with e = 65537 is fine.
  device big{mo, {}, std::make_shared<jose::private_key>(jose::private_key::generate_rsa(4096))};
  schemas::access_claims cl;
  cl.sub = "big-key";
  cl.msisdns = {mo};
  cl.iat = now_seconds();
  cl.exp = cl.iat + 600;
  cl.cnf_jwk_json = big.key->public_part().to_jwk_json();
  big.tok = schemas::mint_access_token(eng.issuer(), cl);
  CHECK(c.post("/start", start_body(mo, mt, sdp()), signed_by(big, "POST", "/start", start_body(mo, mt, sdp())))
            .status == 200);
}

TEST_CASE("hostile auth: a full rate-limiter table admits newcomers; one subject's tokens share its rate") {
  SUBCASE("full table") {
    engine_process eng({"--rate-max-tokens", "16", "--rate-limit", "1", "--rate-burst", "1"});
    http_client c(eng.port());
    const std::string uri = "/calls/" + unknown_call_id();
    int limited = 0;
    for (int i = 0; i < 48; ++i) {  // 48 tokens of 48 subjects, one request each: none is over its rate
      const std::string tok = eng.token({fresh_msisdn()}, "dev-" + std::to_string(i));
      limited += c.get(uri, bearer(tok)).status == 429;
    }
    CHECK(limited == 0);
    CHECK(metric_value(c.get("/metrics").body, "yna_rate_limiter_evicted").value_or(0) > 0);
  }
  SUBCASE("per subject") {
    engine_process eng({"--rate-limit", "100", "--rate-burst", "100", "--rate-limit-sub", "1", "--rate-burst-sub", "5"});
    http_client c(eng.port());
    const std::string uri = "/calls/" + unknown_call_id();
    const std::string number = fresh_msisdn();  // one subject ("it-<number>"), four tokens
    std::vector<std::string> toks;
    for (int i = 0; i < 4; ++i) toks.push_back(eng.token({number}, "dev-" + std::to_string(i)));
    const auto t0 = std::chrono::steady_clock::now();
    int admitted = 0, limited = 0;
    for (int round = 0; round < 5; ++round)
      for (const auto& tok : toks) {
        const auto r = c.get(uri, bearer(tok));
        admitted += r.status == 404;
        limited += r.status == 429;
      }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO("admitted ", admitted, ", limited ", limited, " in ", secs, " s");
    CHECK(admitted <= 5 + static_cast<int>(secs) + 1);  // the subject's burst and rate, not 4 tokens' worth
    CHECK(limited >= 20 - (5 + static_cast<int>(secs) + 1));
    // Another subject is not affected.
    const std::string tok = eng.token({fresh_msisdn()});
    for (int i = 0; i < 5; ++i) CHECK(c.get(uri, bearer(tok)).status == 404);
  }
}

TEST_CASE("hostile auth: access-token lifetime and iat are bounded; a PoP with exp before iat is 401") {
  engine_process eng;
  http_client c(eng.port());
  const std::string mo = fresh_msisdn(), mt = fresh_msisdn();
  const std::string body = start_body(mo, mt, sdp());
  const auto now = now_seconds();
  auto payload = [&](std::string iat, std::string exp) {
    return R"({"iss":")" + eng.issuer().issuer + R"(","sub":"life","msisdns":[")" + mo + R"("],"iat":)" + iat +
           R"(,"exp":)" + exp + "}";
  };
  struct tc {
    const char* name;
    std::string payload;
    int status;
  };
  const std::vector<tc> cases = {
      {"exp 1e300", payload(std::to_string(now), "1e300"), 401},
      {"48 h lifetime", payload(std::to_string(now), std::to_string(now + 48 * 3600)), 401},
      {"iat an hour ahead", payload(std::to_string(now + 3600), std::to_string(now + 7200)), 401},
      {"23 h lifetime", payload(std::to_string(now), std::to_string(now + 23 * 3600)), 200},
  };
  for (const auto& t : cases) {
    CAPTURE(t.name);
    auto r = c.post("/start", body, bearer(issuer_signed(eng, t.payload)));
    CHECK(r.status == t.status);
    if (t.status == 401) CHECK(reason_code_of(r.body) == "UNAUTHORIZED");
  }
  // --max-token-lifetime moves the bound.
  engine_process strict({"--max-token-lifetime", "600"});
  http_client cs(strict.port());
  CHECK(cs.post("/start", body, bearer(strict.token({mo}, "dev-1", std::chrono::hours(1)))).status == 401);
  CHECK(cs.post("/start", body, bearer(strict.token({mo}, "dev-1", std::chrono::minutes(5)))).status == 200);

  // PoP: exp before iat (not yet expired with the leeway) is refused.
  const device d = new_device(eng, mo);
  const std::string uri = "/calls/" + unknown_call_id();
  const std::string auth = "Bearer " + d.tok;
  const auto pop = schemas::build_pop_token(*d.key, {{"Authorization", auth}, {"uri", uri}, {"http-method", "GET"}},
                                            now_seconds(), now_seconds() - 5);
  auto r = c.get(uri, {{"Authorization", auth}, {"X-Authorization", pop}});
  CHECK(r.status == 401);
  CHECK(reason_code_of(r.body) == "POP_INVALID");
}

TEST_CASE("hostile auth: a malformed flag is a usage error naming it; risky set-ups are warned about") {
  const auto dir = std::filesystem::temp_directory_path() / ("yna-flags-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string bin = shell_quote(engine_path().string());
  const std::string data = shell_quote((dir / "data").string());
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--listen", "127.0.0.1:abc"}, {"--listen", "127.0.0.1:70000"}, {"--listen", "nohost:80"},
           {"--threads", "abc"}, {"--max-connections-per-ip", "many"}, {"--max-connections", "-1"}, {"--trusted-proxy", "proxy.example"}}) {
    CAPTURE(flag);
    CAPTURE(value);
    const auto r = run_command("timeout 20 " + bin + " --data-dir " + data + " " + flag + " " + shell_quote(value) +
                               " 2>&1; echo \"exit=$?\"");
    CHECK(r.out.find("exit=2") != std::string::npos);
    CHECK(r.out.find(flag) != std::string::npos);
    CHECK(r.out.find("terminate called") == std::string::npos);
  }
  // The development issuer on a non-loopback listener.
  auto dev = run_command("timeout -s TERM 4 " + bin + " --data-dir " + data + " --listen 0.0.0.0:0 2>&1");
  CHECK(dev.out.find("development issuer is on") != std::string::npos);
  // An external issuer without --jwt-issuer/--jwt-audience.
  {
    std::ofstream(dir / "issuer.pem") << jose::private_key::generate_rsa(2048).public_part().to_pem();
    auto ext = run_command("timeout -s TERM 4 " + bin + " --data-dir " + data + " --listen 127.0.0.1:0 --jwt-public-key " +
                           shell_quote((dir / "issuer.pem").string()) + " 2>&1");
    CHECK(ext.out.find("external issuer without --jwt-issuer and --jwt-audience") != std::string::npos);
    auto ok = run_command("timeout -s TERM 4 " + bin + " --data-dir " + data + " --listen 127.0.0.1:0 --jwt-public-key " +
                          shell_quote((dir / "issuer.pem").string()) + " --jwt-issuer i --jwt-audience a 2>&1");
    CHECK(ok.out.find("external issuer without") == std::string::npos);
    CHECK(ok.out.find("listening on") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}
