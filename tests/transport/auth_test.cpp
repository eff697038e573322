#include "transport/auth.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"

namespace jose = schemas::jose;
using transport::auth_error;

namespace {

constexpr std::int64_t now = 1700000000;
constexpr const char* issuer = "https://issuer.example";
constexpr const char* audience = "yna";

const jose::private_key& rsa_key() {
  static const auto key = jose::private_key::generate_rsa();
  return key;
}
const jose::private_key& ec_key() {
  static const auto key = jose::private_key::generate_ec_p256();
  return key;
}

transport::issuer_config config() {
  transport::issuer_config c;
  c.keys.push_back({"rsa-1", rsa_key().public_part()});
  c.keys.push_back({"ec-1", ec_key().public_part()});
  c.issuer = issuer;
  c.audience = audience;
  return c;
}

const transport::token_verifier& verifier() {
  static const transport::token_verifier v(config());
  return v;
}

std::string claims(const std::string& extra = "", std::int64_t exp = now + 600) {
  return R"({"iss":")" + std::string(issuer) + R"(","aud":")" + audience +
         R"(","sub":"alice","msisdns":["14254369410"],"iat":)" + std::to_string(now) +
         R"(,"exp":)" + std::to_string(exp) + extra + "}";
}

std::string rs256(const std::string& payload, const std::string& kid = "rsa-1") {
  return jose::sign_jwt(rsa_key(), jose::alg::rs256, R"({"alg":"RS256","typ":"JWT","kid":")" + kid + R"("})",
                        payload);
}
std::string es256(const std::string& payload) {
  return jose::sign_jwt(ec_key(), jose::alg::es256, R"({"alg":"ES256","kid":"ec-1"})", payload);
}

// Unsigned header.payload with an arbitrary signature part.
std::string raw_token(const std::string& header, const std::string& payload, const std::string& sig_b64) {
  return schemas::base64url_encode(header) + "." + schemas::base64url_encode(payload) + "." + sig_b64;
}

schemas::result<transport::principal, auth_error> check(const std::string& token, std::int64_t at = now) {
  return verifier().verify_authorization("Bearer " + token, at);
}

void expect_error(const schemas::result<transport::principal, auth_error>& r, auth_error e) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error() == e);
}

}  // namespace

TEST_CASE("auth: a valid RS256 token gives its principal") {
  const std::string jwk = rsa_key().public_part().to_jwk_json();
  auto p = check(rs256(claims(R"(,"device_id":"phone-1","cnf":{"jwk":)" + jwk + "}")));
  REQUIRE(p.has_value());
  CHECK(p->sub == "alice");
  CHECK(p->msisdns == std::vector<std::string>{"14254369410"});
  CHECK(p->device_id == "phone-1");
  CHECK(p->cnf_jwk_json == jwk);
  CHECK(p->cnf_key.has_value());
  CHECK(p->cnf_thumbprint.size() == 32);
  CHECK(p->exp == now + 600);
  CHECK(p->owns("14254369410"));
  CHECK(p->owns("+14254369410"));
  CHECK_FALSE(p->owns("14254369411"));
  CHECK_FALSE(p->owns(""));
}

TEST_CASE("auth: the name claim is the principal's display name (contract §10), cut to 256 bytes") {
  auto p = check(rs256(claims(R"(,"name":"Alice Smith")")));
  REQUIRE(p.has_value());
  CHECK(p->name == "Alice Smith");
  auto none = check(rs256(claims()));
  REQUIRE(none.has_value());
  CHECK(none->name.empty());
  auto longer = check(rs256(claims(R"(,"name":")" + std::string(300, 'n') + "\"")));
  REQUIRE(longer.has_value());
  CHECK(longer->name == std::string(256, 'n'));
  expect_error(check(rs256(claims(R"(,"name":42)"))), auth_error::bad_claims);
}

TEST_CASE("auth: a valid ES256 token gives its principal") {
  auto p = check(es256(claims()));
  REQUIRE(p.has_value());
  CHECK(p->sub == "alice");
  CHECK(p->device_id.empty());
  CHECK(p->cnf_jwk_json.empty());
}

TEST_CASE("auth: the Authorization header must be 'Bearer <token>'") {
  const auto token = rs256(claims());
  expect_error(verifier().verify_authorization("", now), auth_error::missing);
  expect_error(verifier().verify_authorization("   ", now), auth_error::missing);
  expect_error(verifier().verify_authorization("Bearer", now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Bearer   ", now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Basic " + token, now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Token " + token, now), auth_error::malformed);
  expect_error(verifier().verify_authorization(token, now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Bearer garbage", now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Bearer a.b", now), auth_error::malformed);
  expect_error(verifier().verify_authorization("Bearer " + token + " extra", now), auth_error::malformed);
  CHECK(verifier().verify_authorization("bearer " + token, now).has_value());
  CHECK(verifier().verify_authorization("BEARER  " + token + " ", now).has_value());
  CHECK(verifier().verify_token(token, now).has_value());
}

TEST_CASE("auth: JWS shape and header errors") {
  SUBCASE("two parts") {
    const auto token = rs256(claims());
    expect_error(check(token.substr(0, token.rfind('.'))), auth_error::malformed);
  }
  SUBCASE("header is not JSON / has no alg") {
    expect_error(check(raw_token("not json", claims(), "AAAA")), auth_error::malformed);
    expect_error(check(raw_token(R"({"typ":"JWT"})", claims(), "AAAA")), auth_error::malformed);
    expect_error(check(raw_token(R"({"alg":5})", claims(), "AAAA")), auth_error::malformed);
  }
  SUBCASE("crit extensions are not understood") {
    const auto token = jose::sign_jwt(rsa_key(), jose::alg::rs256, R"({"alg":"RS256","kid":"rsa-1","crit":["b64"],"b64":false})", claims());
    expect_error(check(token), auth_error::malformed);
  }
}

TEST_CASE("auth: alg none and HMAC are refused") {
  SUBCASE("alg none with an empty signature") {
    expect_error(check(raw_token(R"({"alg":"none"})", claims(), "")), auth_error::unsupported_alg);
    expect_error(check(raw_token(R"({"alg":"none","kid":"rsa-1"})", claims(), "")), auth_error::unsupported_alg);
  }
  SUBCASE("HS256 keyed with the RSA public key's PEM (key confusion)") {
    const std::string secret = rsa_key().public_part().to_pem();
    const std::string signing_input = schemas::base64url_encode(R"({"alg":"HS256","kid":"rsa-1"})") + "." +
                                      schemas::base64url_encode(claims());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    REQUIRE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
                 &mac_len) != nullptr);
    const auto token = signing_input + "." +
                       schemas::base64url_encode(std::string(reinterpret_cast<const char*>(mac), mac_len));
    expect_error(check(token), auth_error::unsupported_alg);
  }
  SUBCASE("other algorithms") {
    for (const char* a : {"RS384", "PS256", "ES384", "EdDSA", "rs256"}) {
      CAPTURE(a);
      expect_error(check(raw_token(R"({"alg":")" + std::string(a) + R"("})", claims(), "AAAA")),
                   auth_error::unsupported_alg);
    }
  }
}

TEST_CASE("auth: key selection and signature") {
  SUBCASE("unknown kid") { expect_error(check(rs256(claims(), "other")), auth_error::unknown_key); }
  SUBCASE("no kid: every key of the alg's type is tried") {
    const auto token = jose::sign_jwt(rsa_key(), jose::alg::rs256, R"({"alg":"RS256"})", claims());
    CHECK(check(token).has_value());
  }
  SUBCASE("no kid and no key of that type") {
    transport::issuer_config ec_only = config();
    ec_only.keys.erase(ec_only.keys.begin());
    const transport::token_verifier v(ec_only);
    const auto token = jose::sign_jwt(rsa_key(), jose::alg::rs256, R"({"alg":"RS256"})", claims());
    expect_error(v.verify_authorization("Bearer " + token, now), auth_error::unknown_key);
  }
  SUBCASE("kid of a key of the other type") {
    const auto token = jose::sign_jwt(rsa_key(), jose::alg::rs256, R"({"alg":"RS256","kid":"ec-1"})", claims());
    expect_error(check(token), auth_error::bad_signature);
  }
  SUBCASE("signed by an untrusted key with a trusted kid") {
    const auto stranger = jose::private_key::generate_rsa();
    const auto token = jose::sign_jwt(stranger, jose::alg::rs256, R"({"alg":"RS256","kid":"rsa-1"})", claims());
    expect_error(check(token), auth_error::bad_signature);
  }
  SUBCASE("flipped signature byte") {
    auto token = es256(claims());
    const auto dot = token.rfind('.');
    auto sig = *schemas::base64url_decode(token.substr(dot + 1));
    sig[5] = static_cast<char>(sig[5] ^ 0x40);
    expect_error(check(token.substr(0, dot + 1) + schemas::base64url_encode(sig)), auth_error::bad_signature);
  }
  SUBCASE("payload swapped under a valid signature") {
    const auto good = rs256(claims());
    const auto other = rs256(claims().replace(claims().find("alice"), 5, "mallo"));
    const auto first_dot = good.find('.');
    const auto last_dot = good.rfind('.');
    const auto other_payload = other.substr(other.find('.'), other.rfind('.') - other.find('.'));
    expect_error(check(good.substr(0, first_dot) + other_payload + good.substr(last_dot)), auth_error::bad_signature);
  }
}

TEST_CASE("auth: time claims with 30 s leeway") {
  SUBCASE("expired") {
    auto r = check(rs256(claims("", now - 31)));
    expect_error(r, auth_error::expired);
    CHECK(transport::reason_code(auth_error::expired) == "TOKEN_EXPIRED");
  }
  SUBCASE("expired but within leeway is accepted") {
    CHECK(check(rs256(claims("", now - 30))).has_value());
    CHECK(check(rs256(claims("", now - 1))).has_value());
  }
  SUBCASE("exp is required and numeric") {
    const std::string no_exp = R"({"iss":"https://issuer.example","aud":"yna","sub":"alice","msisdns":["14254369410"]})";
    expect_error(check(rs256(no_exp)), auth_error::bad_claims);
    std::string str_exp = claims();
    str_exp.replace(str_exp.find(R"("exp":)") + 6, 10, R"("17000006")");
    expect_error(check(rs256(str_exp)), auth_error::bad_claims);
  }
  SUBCASE("fractional exp is accepted") {
    std::string p = claims();
    p.insert(p.rfind('}'), ".5");  // exp is the last claim
    auto r = check(rs256(p));
    REQUIRE(r.has_value());
    CHECK(r->exp == now + 600);
  }
  SUBCASE("nbf in the future") {
    expect_error(check(rs256(claims(R"(,"nbf":)" + std::to_string(now + 31)))), auth_error::not_yet_valid);
    CHECK(check(rs256(claims(R"(,"nbf":)" + std::to_string(now + 30)))).has_value());
    CHECK(check(rs256(claims(R"(,"nbf":)" + std::to_string(now - 100)))).has_value());
    expect_error(check(rs256(claims(R"(,"nbf":"soon")"))), auth_error::bad_claims);
  }
}

TEST_CASE("auth: issuer and audience") {
  SUBCASE("wrong iss") {
    std::string p = claims();
    p.replace(p.find(issuer), std::strlen(issuer), "https://evil.example");
    expect_error(check(rs256(p)), auth_error::wrong_issuer);
  }
  SUBCASE("missing iss") {
    std::string p = claims();
    p.replace(p.find(R"("iss")"), 5, R"("isx")");
    expect_error(check(rs256(p)), auth_error::wrong_issuer);
  }
  SUBCASE("wrong aud") {
    std::string p = claims();
    p.replace(p.find(R"("aud":"yna")"), 11, R"("aud":"other")");
    expect_error(check(rs256(p)), auth_error::wrong_audience);
  }
  SUBCASE("aud as an array") {
    std::string p = claims();
    p.replace(p.find(R"("aud":"yna")"), 11, R"("aud":["other","yna"])");
    CHECK(check(rs256(p)).has_value());
    p = claims();
    p.replace(p.find(R"("aud":"yna")"), 11, R"("aud":["other",5])");
    expect_error(check(rs256(p)), auth_error::wrong_audience);
  }
  SUBCASE("not checked when not configured") {
    transport::issuer_config open = config();
    open.issuer.reset();
    open.audience.reset();
    const transport::token_verifier v(open);
    std::string p = claims();
    p.replace(p.find(R"("aud":"yna")"), 11, R"("aud":"other")");
    CHECK(v.verify_authorization("Bearer " + rs256(p), now).has_value());
  }
}

TEST_CASE("auth: identity claims") {
  const auto with = [](const std::string& from, const std::string& to) {
    std::string p = claims();
    const auto at = p.find(from);
    REQUIRE(at != std::string::npos);
    return rs256(p.replace(at, from.size(), to));
  };
  SUBCASE("missing sub") { expect_error(check(with(R"("sub":"alice",)", "")), auth_error::bad_claims); }
  SUBCASE("sub not a string or empty") {
    expect_error(check(with(R"("sub":"alice")", R"("sub":42)")), auth_error::bad_claims);
    expect_error(check(with(R"("sub":"alice")", R"("sub":"")")), auth_error::bad_claims);
  }
  SUBCASE("msisdns wrong type") {
    expect_error(check(with(R"(["14254369410"])", R"("14254369410")")), auth_error::bad_claims);
    expect_error(check(with(R"(["14254369410"])", R"([14254369410])")), auth_error::bad_claims);
    expect_error(check(with(R"(["14254369410"])", R"([])")), auth_error::bad_claims);
    expect_error(check(with(R"("msisdns":["14254369410"],)", "")), auth_error::bad_claims);
  }
  SUBCASE("msisdns invalid number") {
    expect_error(check(with(R"("14254369410")", R"("12345")")), auth_error::bad_claims);
    expect_error(check(with(R"("14254369410")", R"("1234567890123456")")), auth_error::bad_claims);
    expect_error(check(with(R"("14254369410")", R"("1425-436-9410")")), auth_error::bad_claims);
    expect_error(check(with(R"("14254369410")", R"("++14254369410")")), auth_error::bad_claims);
  }
  SUBCASE("leading + is dropped, duplicates collapse") {
    auto p = check(with(R"(["14254369410"])", R"(["+14254369410","123456","14254369410"])"));
    REQUIRE(p.has_value());
    CHECK(p->msisdns == std::vector<std::string>{"14254369410", "123456"});
  }
  SUBCASE("device_id and cnf types") {
    expect_error(check(rs256(claims(R"(,"device_id":7)"))), auth_error::bad_claims);
    expect_error(check(rs256(claims(R"(,"cnf":"x")"))), auth_error::bad_claims);
    expect_error(check(rs256(claims(R"(,"cnf":{"jwk":"x"})"))), auth_error::bad_claims);
    auto p = check(rs256(claims(R"(,"cnf":{"jkt":"abc"})")));
    REQUIRE(p.has_value());
    CHECK(p->cnf_jwk_json.empty());
  }
  SUBCASE("payload not an object / not JSON") {
    expect_error(check(rs256("[1,2]")), auth_error::bad_claims);
    expect_error(check(rs256("{\"sub\":")), auth_error::malformed);
  }
}

TEST_CASE("auth: one verifier shared by many threads") {
  const auto rs = rs256(claims());
  const auto es = es256(claims());
  const auto bad = rs256(claims("", now - 100));
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        const bool good = check(i % 2 ? rs : es).has_value();
        auto expired = check(bad);
        (good ? ok : wrong)++;
        if (expired.has_value() || expired.error() != auth_error::expired) wrong++;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 200);
  CHECK(wrong == 0);
}

TEST_CASE("auth: reason codes and descriptions") {
  for (int i = 0; i <= static_cast<int>(auth_error::bad_claims); ++i) {
    const auto e = static_cast<auth_error>(i);
    CAPTURE(i);
    CHECK(transport::reason_code(e) == (e == auth_error::expired ? "TOKEN_EXPIRED" : "UNAUTHORIZED"));
    CHECK(transport::describe(e).size() > 10);
  }
}

TEST_CASE("auth: load_trusted_key_pem") {
  const auto path = std::filesystem::temp_directory_path() / ("auth-test-key-" + std::to_string(::getpid()) + ".pem");
  std::ofstream(path) << ec_key().public_part().to_pem();
  auto key = transport::load_trusted_key_pem(path, "ec-file");
  REQUIRE(key.has_value());
  CHECK(key->kid == "ec-file");
  CHECK(key->key == ec_key().public_part());

  std::ofstream(path, std::ios::trunc) << "nope";
  auto bad = transport::load_trusted_key_pem(path, "x");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().find(path.string()) != std::string::npos);
  std::filesystem::remove(path);

  auto missing = transport::load_trusted_key_pem(path, "x");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().find(path.string()) != std::string::npos);
}

TEST_CASE("auth: a cnf.jwk must be RSA of 2048 to 4096 bits with e = 65537 (contract 3a)") {
  auto with_cnf = [](const std::string& jwk) { return check(rs256(claims(R"(,"cnf":{"jwk":)" + jwk + "}"))); };
  expect_error(with_cnf(R"({"kty":"RSA","e":"AQAB","n":"xyz"})"), auth_error::bad_device_key);
  expect_error(with_cnf(ec_key().public_part().to_jwk_json()), auth_error::bad_device_key);
  // e = 3 on a real modulus
  std::string jwk = rsa_key().public_part().to_jwk_json();
  const auto e_at = jwk.find("\"e\":\"AQAB\"");
  REQUIRE(e_at != std::string::npos);
  expect_error(with_cnf(jwk.replace(e_at, 10, "\"e\":\"Aw\"")), auth_error::bad_device_key);
  CHECK(with_cnf(jose::private_key::generate_rsa(4096).public_part().to_jwk_json()).has_value());
}

TEST_CASE("auth: lifetime and iat bounds (contract 3a)") {
  transport::issuer_config c = config();
  c.max_lifetime_s = 3600;
  const transport::token_verifier v(c);
  auto at = [&](const std::string& payload) { return v.verify_authorization("Bearer " + rs256(payload), now); };
  auto body = [](std::string iat, std::string exp) {
    return R"({"iss":")" + std::string(issuer) + R"(","aud":")" + audience +
           R"(","sub":"alice","msisdns":["14254369410"],"iat":)" + iat + R"(,"exp":)" + exp + "}";
  };
  CHECK(at(body(std::to_string(now), std::to_string(now + 3600))).has_value());
  expect_error(at(body(std::to_string(now), std::to_string(now + 3601))), auth_error::lifetime_too_long);
  expect_error(at(body(std::to_string(now), "1e300")), auth_error::lifetime_too_long);
  expect_error(at(body(std::to_string(now + 31), std::to_string(now + 600))), auth_error::issued_in_future);
  CHECK(at(body(std::to_string(now + 29), std::to_string(now + 600))).has_value());  // within the leeway
  // Without iat the lifetime counts from now.
  auto no_iat = [&](std::int64_t exp) {
    return v.verify_authorization("Bearer " + rs256(R"({"iss":")" + std::string(issuer) + R"(","aud":")" + audience +
                                                    R"(","sub":"alice","msisdns":["14254369410"],"exp":)" +
                                                    std::to_string(exp) + "}"),
                                  now);
  };
  CHECK(no_iat(now + 3000).has_value());
  expect_error(no_iat(now + 4000), auth_error::lifetime_too_long);
}

TEST_CASE("auth: the token cache is bounded, evicts the least recently used, and forgets expired tokens") {
  const transport::token_verifier v(config(), 32);  // two tokens per shard (16 shards)
  auto token = [](int i, std::int64_t exp = now + 600) { return es256(claims(",\"jti\":\"t" + std::to_string(i) + "\"", exp)); };
  SUBCASE("bounded: evicts, never refuses") {
    for (int i = 0; i < 100; ++i) REQUIRE(v.verify_token(token(i), now).has_value());
    CHECK(v.cached() <= 32);
    CHECK(v.evicted() == 100 - v.cached());
  }
  SUBCASE("least recently used first") {
    // Three tokens of one shard (the shard is the first byte of the token's SHA-256).
    auto shard = [](const std::string& t) { return schemas::sha256(t)[0] % 16; };
    std::vector<std::string> same;
    for (int i = 0; same.size() < 3; ++i) {
      auto t = token(i);
      if (same.empty() || shard(t) == shard(same.front())) same.push_back(std::move(t));
    }
    const std::string &a = same[0], &b = same[1], &c = same[2];
    REQUIRE(v.verify_token(a, now).has_value());
    REQUIRE(v.verify_token(b, now).has_value());
    REQUIRE(v.verify_token(a, now).has_value());  // a hit: a is now the most recent
    REQUIRE(v.verify_token(c, now).has_value());  // full: b (least recent) goes
    CHECK(v.evicted() == 1);
    REQUIRE(v.verify_token(a, now).has_value());  // still cached: nothing evicted
    CHECK(v.evicted() == 1);
    REQUIRE(v.verify_token(b, now).has_value());  // b was evicted: verified and cached again
    CHECK(v.evicted() == 2);
  }
  SUBCASE("expired tokens are forgotten: the gauge returns to 0") {
    for (int i = 0; i < 20; ++i) REQUIRE(v.verify_token(token(i, now + 60), now).has_value());
    CHECK(v.cached() > 0);
    v.forget_expired(now + 60 + 30);  // within the leeway: still valid, still cached
    CHECK(v.cached() > 0);
    v.forget_expired(now + 60 + 31);
    CHECK(v.cached() == 0);
  }
}
