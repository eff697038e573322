#include "transport/pop.hpp"

#include <doctest/doctest.h>

#include <map>

#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"
#include "schemas/jose.hpp"
#include "schemas/json_writer.hpp"

namespace {

namespace jose = schemas::jose;
using transport::pop_error;

const jose::private_key& device_key() {
  static const auto k = jose::private_key::generate_rsa(2048);
  return k;
}

struct fake_request {
  std::string method = "POST";
  std::string target = "/hold/ABC?x=1";
  std::string body = R"({"sdp":"v=0"})";
  std::map<std::string, std::string> headers{{"authorization", "Bearer tok"}, {"content-type", "application/json"}};

  transport::pop_request view() const {
    return {method, target, body, [this](std::string_view name) -> std::optional<std::string_view> {
              std::string l(name);
              for (auto& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
              auto it = headers.find(l);
              if (it == headers.end()) return std::nullopt;
              return std::string_view(it->second);
            }};
  }
};

// Builds a PoP token the way T-Mobile's builders do: ehts names joined by ';', edts over
// the values concatenated in that order.
std::string make_pop(const std::vector<std::pair<std::string, std::string>>& signed_values, std::int64_t iat,
                     std::int64_t exp, std::string jti, const jose::private_key& key = device_key(),
                     std::string alg = "RS256") {
  std::string ehts, concat;
  for (const auto& [k, v] : signed_values) {
    if (!ehts.empty()) ehts += ';';
    ehts += k;
    concat += v;
  }
  schemas::json_writer w;
  w.begin_object().field("iat", iat).field("exp", exp).field("ehts", std::string_view(ehts));
  w.field("edts", std::string_view(schemas::base64url_encode(schemas::to_bytes(schemas::sha256(concat)))));
  w.field("jti", std::string_view(jti)).field("v", "1").end_object();
  const std::string header = R"({"alg":")" + alg + R"(","typ":"JWT"})";
  if (alg != "RS256") {
    return schemas::base64url_encode(header) + "." + schemas::base64url_encode(w.str()) + ".";
  }
  return jose::sign_jwt(key, jose::alg::rs256, header, w.str());
}

std::vector<std::pair<std::string, std::string>> standard(const fake_request& r) {
  return {{"Content-Type", "application/json"}, {"Authorization", "Bearer tok"}, {"uri", r.target},
          {"http-method", r.method}, {"body", r.body}};
}

constexpr std::int64_t now = 1'800'000'000;

// The device key as the token verifier hands it over (parsed cnf.jwk), nullptr for none.
const jose::public_key* parse(std::string_view jwk) {
  static std::map<std::string, jose::public_key> keys;
  if (jwk.empty()) return nullptr;
  auto it = keys.find(std::string(jwk));
  if (it == keys.end()) it = keys.emplace(std::string(jwk), *jose::public_key::from_jwk(jwk)).first;
  return &it->second;
}

}  // namespace

TEST_CASE("pop: a token over the request verifies once, then is a replay") {
  transport::pop_verifier v({});
  fake_request r;
  const std::string jwk = device_key().public_part().to_jwk_json();
  const std::string tok = make_pop(standard(r), now, now + 120, "jti-1");
  CHECK(v.verify(tok, parse(jwk), "key-a", r.view(), now).has_value());
  auto again = v.verify(tok, parse(jwk), "key-a", r.view(), now);
  REQUIRE(!again.has_value());
  CHECK(again.error() == pop_error::replayed);
  CHECK(transport::pop_reason(pop_error::replayed) == schemas::reason_code::pop_replayed);
}

TEST_CASE("pop: each failure has its own error") {
  transport::pop_verifier v({});
  fake_request r;
  const std::string jwk = device_key().public_part().to_jwk_json();
  auto err = [&](const std::string& tok, const fake_request& req, std::string_view key_jwk) {
    auto s = v.verify(tok, parse(key_jwk), "key-a", req.view(), now);
    REQUIRE(!s.has_value());
    return s.error();
  };
  int n = 0;
  auto jti = [&] { return "j" + std::to_string(++n); };
  CHECK(err("", r, jwk) == pop_error::missing);
  CHECK(err("abc.def", r, jwk) == pop_error::malformed);
  CHECK(err(make_pop(standard(r), now, now + 60, jti(), device_key(), "none"), r, jwk) == pop_error::unsupported_alg);
  CHECK(err(make_pop(standard(r), now, now + 60, jti()), r, "") == pop_error::no_cnf);
  const auto other = jose::private_key::generate_rsa(2048);
  CHECK(err(make_pop(standard(r), now, now + 60, jti(), other), r, jwk) == pop_error::bad_signature);
  CHECK(err(make_pop(standard(r), now - 200, now - 11, jti()), r, jwk) == pop_error::expired);
  CHECK(v.verify(make_pop(standard(r), now - 200, now - 9, jti()), parse(jwk), "key-a", r.view(), now).has_value());  // leeway
  CHECK(err(make_pop(standard(r), now + 30, now + 60, jti()), r, jwk) == pop_error::issued_in_future);
  CHECK(err(make_pop(standard(r), now, now + 301, jti()), r, jwk) == pop_error::lifetime_too_long);
  {
    auto vals = standard(r);
    vals.erase(vals.begin() + 1);  // no Authorization
    CHECK(err(make_pop(vals, now, now + 60, jti()), r, jwk) == pop_error::missing_coverage);
  }
  {
    auto vals = standard(r);
    vals.pop_back();  // no body, but the request has one
    CHECK(err(make_pop(vals, now, now + 60, jti()), r, jwk) == pop_error::missing_coverage);
  }
  {
    fake_request no_body = r;
    no_body.method = "DELETE";
    no_body.body.clear();
    auto vals = standard(no_body);
    vals.pop_back();  // no body and none needed
    CHECK(v.verify(make_pop(vals, now, now + 60, jti()), parse(jwk), "key-a", no_body.view(), now).has_value());
  }
  {
    auto vals = standard(r);
    vals.push_back({"X-Missing", "v"});
    CHECK(err(make_pop(vals, now, now + 60, jti()), r, jwk) == pop_error::header_absent);
  }
  SUBCASE("changed body, uri, method or header: edts mismatch") {
    const std::string tok = make_pop(standard(r), now, now + 60, "fixed");
    fake_request b = r;
    b.body = R"({"sdp":"v=1"})";
    CHECK(err(tok, b, jwk) == pop_error::edts_mismatch);
    fake_request u = r;
    u.target = "/hold/OTHER?x=1";
    CHECK(err(tok, u, jwk) == pop_error::edts_mismatch);
    fake_request m = r;
    m.method = "PUT";
    CHECK(err(tok, m, jwk) == pop_error::edts_mismatch);
    fake_request h = r;
    h.headers["content-type"] = "text/plain";
    CHECK(err(tok, h, jwk) == pop_error::edts_mismatch);
    CHECK(v.verify(tok, parse(jwk), "key-a", r.view(), now).has_value());  // the rejected ones were not remembered
  }
  SUBCASE("ehts names are case-insensitive") {
    std::vector<std::pair<std::string, std::string>> vals{
        {"AUTHORIZATION", "Bearer tok"}, {"URI", r.target}, {"HTTP-Method", r.method}, {"Body", r.body}};
    CHECK(v.verify(make_pop(vals, now, now + 60, "ci"), parse(jwk), "key-a", r.view(), now).has_value());
  }
}

TEST_CASE("pop: the replay cache is bounded and forgets expired entries") {
  transport::replay_cache c(16, 0);  // one entry per shard, no per-key share
  using o = transport::replay_cache::outcome;
  int fresh = 0, full = 0;
  for (int i = 0; i < 64; ++i) {
    auto r = c.check_and_insert("k" + std::to_string(i), "j", 100, 50);
    fresh += r == o::fresh;
    full += r == o::full;
  }
  CHECK(fresh <= 16);
  CHECK(full > 0);
  CHECK(c.size() == static_cast<std::size_t>(fresh));
  // after expiry everything is forgotten and new keys fit again
  CHECK(c.check_and_insert("k0", "j", 300, 200) == o::fresh);
  CHECK(c.check_and_insert("k0", "j", 300, 200) == o::replayed);
  CHECK(c.keys() >= 1);
}

TEST_CASE("pop: jtis are remembered per key, each key with its own share") {
  transport::replay_cache c(1000, 3);
  using o = transport::replay_cache::outcome;
  for (int i = 0; i < 3; ++i) CHECK(c.check_and_insert("a", "j" + std::to_string(i), 100, 50) == o::fresh);
  CHECK(c.check_and_insert("a", "j9", 100, 50) == o::key_full);  // key a is at its share...
  CHECK(c.check_and_insert("b", "j9", 100, 50) == o::fresh);     // ...key b is not
  CHECK(c.check_and_insert("b", "j0", 100, 50) == o::fresh);     // a's jti is no replay for b
  CHECK(c.check_and_insert("a", "j0", 100, 50) == o::replayed);
  CHECK(c.seen("a", "j1", 50));
  CHECK_FALSE(c.seen("b", "j1", 50));
  CHECK(c.check_and_insert("a", "j9", 300, 200) == o::fresh);  // a's old jtis expired: room again
  CHECK(c.size() == 3);
}

TEST_CASE("pop: bounded work: ehts names each item once, at most 16; a replay is refused before the digest") {
  transport::pop_verifier v({});
  fake_request r;
  const std::string jwk = device_key().public_part().to_jwk_json();
  auto err = [&](const std::string& tok, const fake_request& req) {
    auto s = v.verify(tok, parse(jwk), "key-a", req.view(), now);
    REQUIRE(!s.has_value());
    return s.error();
  };
  {
    auto vals = standard(r);
    for (int i = 0; i < 5; ++i) vals.push_back({"body", r.body});
    CHECK(err(make_pop(vals, now, now + 60, "rep"), r) == pop_error::bad_ehts);
    auto upper = standard(r);
    upper.push_back({"URI", r.target});  // names are case-insensitive: a repeat
    CHECK(err(make_pop(upper, now, now + 60, "rep2"), r) == pop_error::bad_ehts);
  }
  {
    auto vals = standard(r);
    fake_request many = r;
    for (int i = 0; vals.size() < 17; ++i) {
      vals.push_back({"x-h" + std::to_string(i), "v"});
      many.headers["x-h" + std::to_string(i)] = "v";
    }
    CHECK(err(make_pop(vals, now, now + 60, "many"), many) == pop_error::bad_ehts);
    vals.pop_back();  // 16 names: fine
    CHECK(v.verify(make_pop(vals, now, now + 60, "sixteen"), parse(jwk), "key-a", many.view(), now).has_value());
  }
  CHECK(err(make_pop(standard(r), now, now - 5, "backwards"), r) == pop_error::exp_before_iat);
  // A verified jti presented again over another request: a replay, not a digest mismatch.
  const std::string tok = make_pop(standard(r), now, now + 60, "once");
  CHECK(v.verify(tok, parse(jwk), "key-a", r.view(), now).has_value());
  fake_request changed = r;
  changed.body = R"({"sdp":"changed"})";
  CHECK(err(tok, changed) == pop_error::replayed);
  // The same jti under another device key is not a replay.
  CHECK(v.verify(tok, parse(jwk), "key-b", r.view(), now).has_value());
}

TEST_CASE("pop: a key over its share gets 429, others carry on") {
  transport::pop_options o;
  o.replay_per_key = 2;
  transport::pop_verifier v(o);
  fake_request r;
  const std::string jwk = device_key().public_part().to_jwk_json();
  CHECK(v.verify(make_pop(standard(r), now, now + 60, "1"), parse(jwk), "key-a", r.view(), now).has_value());
  CHECK(v.verify(make_pop(standard(r), now, now + 60, "2"), parse(jwk), "key-a", r.view(), now).has_value());
  auto s = v.verify(make_pop(standard(r), now, now + 60, "3"), parse(jwk), "key-a", r.view(), now);
  REQUIRE(!s.has_value());
  CHECK(s.error() == pop_error::key_share_full);
  CHECK(transport::pop_reason(s.error()) == schemas::reason_code::too_many_requests);
  CHECK(v.verify(make_pop(standard(r), now, now + 60, "3"), parse(jwk), "key-b", r.view(), now).has_value());
}

TEST_CASE("pop: regression found by fuzzing: huge iat/exp cannot wrap the lifetime check") {
  transport::pop_verifier v({});
  fake_request r;
  const std::string jwk = device_key().public_part().to_jwk_json();
  const auto tok = make_pop(standard(r), -9'000'000'000'000'000'000, 9'000'000'000'000'000'000, "huge");
  auto s = v.verify(tok, parse(jwk), "key-a", r.view(), now);
  REQUIRE(!s.has_value());
  CHECK(s.error() == pop_error::malformed);
  CHECK(v.remembered() == 0);
}

TEST_CASE("pop: expired jtis and the keys left without one are forgotten: the gauges return to 0") {
  transport::replay_cache c(100000, 16);
  using o = transport::replay_cache::outcome;
  // Many device keys come and go (churn), each with a few jtis.
  for (int round = 0; round < 5; ++round) {
    const std::int64_t t = 1000 * round;
    for (int k = 0; k < 200; ++k)
      for (int j = 0; j < 3; ++j)
        REQUIRE(c.check_and_insert("key" + std::to_string(round) + "-" + std::to_string(k), "j" + std::to_string(j),
                                   t + 310, t) == o::fresh);
    CHECK(c.size() <= 600);  // the previous round's have expired in every shard touched
    CHECK(c.keys() <= 200);
  }
  CHECK(c.size() > 0);
  c.forget_expired(4000 + 310);  // expires_at is the last second it is live
  CHECK(c.size() > 0);
  c.forget_expired(4000 + 311);
  CHECK(c.size() == 0);
  CHECK(c.keys() == 0);
  // A lookup that finds a key's jtis expired leaves no empty key behind.
  REQUIRE(c.check_and_insert("lonely", "j", 5010, 5000) == o::fresh);
  CHECK_FALSE(c.seen("lonely", "j", 5011));
  CHECK(c.keys() == 0);
}
