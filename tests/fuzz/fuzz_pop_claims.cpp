// The claims half of PoP verification, which fuzz_pop cannot reach (it cannot sign):
// the input is split like fuzz_pop's (pop_request.hpp), but its first part is the
// claims JSON, which the harness signs with the device key (RS256). The text @EDTS@ in
// the claims is replaced by the correct edts for the ehts the claims name, computed
// here independently, so the fuzzer can get past the digest check.
// Properties of an accepted token:
//  - ehts covers Authorization, uri, http-method, and body when there is one;
//  - edts equals the digest computed here; iat/exp/lifetime are within bounds;
//  - the same token again is refused as replayed, and the cache remembers its jti.
// Any token with one signature bit flipped is refused with bad_signature (or an
// earlier error).
#include "transport/pop.hpp"

#include <simdjson.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "pop_request.hpp"
#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"
#include "schemas/jose.hpp"

namespace {

namespace jose = schemas::jose;
using transport::pop_error;
constexpr std::int64_t now = 1'800'000'000;
constexpr std::string_view header = R"({"alg":"RS256","typ":"JWT"})";

const jose::private_key& device_key() {
  static const auto k = jose::private_key::generate_rsa(2048);
  return k;
}
const jose::public_key& device_pub() {
  static const jose::public_key k = device_key().public_part();
  return k;
}

std::string lower(std::string_view s) {
  std::string l(s);
  for (auto& c : l)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return l;
}

struct coverage {
  bool auth = false, uri = false, method = false, body = false, complete = true;
  std::string concat;  // the signed values in ehts order
};

// Reads ehts the way the contract describes it: ';'-separated names.
coverage cover(std::string_view ehts, const fuzz::split_request& req) {
  coverage c;
  const auto view = req.view();
  std::size_t pos = 0;
  while (true) {
    const auto semi = ehts.find(';', pos);
    const std::string name = lower(ehts.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
    if (name == "uri") { c.uri = true; c.concat += req.target; }
    else if (name == "http-method") { c.method = true; c.concat += req.method; }
    else if (name == "body") { c.body = true; c.concat += req.body; }
    else if (auto v = view.header(name)) { c.auth |= name == "authorization"; c.concat += *v; }
    else c.complete = false;
    if (semi == std::string_view::npos) break;
    pos = semi + 1;
    // The verifier reads "a;b;" as "a;b" (a trailing ';' names nothing, while "a;;b" is
    // malformed); the signed values are the same either way.
    if (pos == ehts.size()) break;
  }
  return c;
}

std::string digest(std::string_view s) { return schemas::base64url_encode(schemas::to_bytes(schemas::sha256(s))); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  transport::pop_verifier verifier({});  // per input: replays only within one input
  const fuzz::split_request req(std::string_view(reinterpret_cast<const char*>(data), size));
  std::string claims(req.token);
  if (claims.empty()) return 0;

  // ehts as the claims state it (first occurrence), for @EDTS@ and the checks.
  static simdjson::dom::parser parser;
  std::string ehts;
  simdjson::dom::object obj;
  bool parsed = false;
  if (parser.parse(claims).get_object().get(obj) == simdjson::SUCCESS) {
    std::string_view e;
    if (obj["ehts"].get_string().get(e) == simdjson::SUCCESS) {
      ehts = std::string(e);
      parsed = true;
    }
  }
  const coverage cov = cover(ehts, req);
  if (const auto at = claims.find("@EDTS@"); at != std::string::npos) claims.replace(at, 6, digest(cov.concat));

  const std::string token = jose::sign_jwt(device_key(), jose::alg::rs256, header, claims);
  auto s = verifier.verify(token, &device_pub(), "fuzz-key", req.view(), now);
  if (std::getenv("FUZZ_VERBOSE"))
    std::fprintf(stderr, "verify: %s\n", s ? "accepted" : std::string(transport::describe(s.error())).c_str());
  if (s) {
    FUZZ_CHECK(parsed);
    FUZZ_CHECK(cov.complete);
    FUZZ_CHECK(cov.auth && cov.uri && cov.method && (req.body.empty() || cov.body));
    simdjson::dom::object signed_claims;
    FUZZ_CHECK(parser.parse(claims).get_object().get(signed_claims) == simdjson::SUCCESS);
    std::string_view edts;
    FUZZ_CHECK(signed_claims["edts"].get_string().get(edts) == simdjson::SUCCESS);
    FUZZ_CHECK(edts == digest(cov.concat));
    double iat = 0, exp = 0;
    FUZZ_CHECK(signed_claims["iat"].get_double().get(iat) == simdjson::SUCCESS);
    FUZZ_CHECK(signed_claims["exp"].get_double().get(exp) == simdjson::SUCCESS);
    FUZZ_CHECK(std::trunc(exp) + 10 >= now && std::trunc(iat) <= now + 10 && std::trunc(exp) - std::trunc(iat) <= 300);
    FUZZ_CHECK(std::trunc(exp) >= std::trunc(iat));
    FUZZ_CHECK(verifier.remembered() == 1);
    auto again = verifier.verify(token, &device_pub(), "fuzz-key", req.view(), now);
    FUZZ_CHECK(!again.has_value() && again.error() == pop_error::replayed);
  } else {
    FUZZ_CHECK(s.error() != pop_error::cache_full);
    FUZZ_CHECK(verifier.remembered() == 0);
  }

  // A bit flipped in the signature: refused before the claims are trusted.
  auto parts = jose::split_jwt(token);
  if (!parts) {  // only when the signed token is over max_jwt_bytes
    FUZZ_CHECK(token.size() > jose::max_jwt_bytes);
    return 0;
  }
  std::string sig = parts->signature;
  sig[claims.size() % sig.size()] ^= static_cast<char>(1 << (size % 8));
  const std::string forged = std::string(parts->signing_input) + "." + schemas::base64url_encode(sig);
  auto f = verifier.verify(forged, &device_pub(), "fuzz-key", req.view(), now);
  FUZZ_CHECK(!f.has_value());
  FUZZ_CHECK(f.error() == pop_error::bad_signature || f.error() == pop_error::malformed);
  return 0;
}
