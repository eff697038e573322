// The claims half of bearer-token verification, which fuzz_jwt cannot reach (it cannot
// forge a signature): the input is split into a JOSE header and a payload, the harness
// signs them with the trusted P-256 key (kid "ec-1") and verifies the result with two
// verifiers of the same configuration, one without the token cache and one with a
// small one (so entries get evicted). Properties:
//  - both verifiers give the same answer, the cached one also when asked again;
//  - an accepted token: its header says ES256; sub is non-empty; msisdns is non-empty,
//    each 6..15 digits, no duplicates, all owned; exp + leeway >= now; cnf_key is set
//    only from an RSA cnf.jwk, and is that key;
//  - the same token with one signature bit flipped is refused (bad_signature when the
//    original was accepted);
//  - the same claims signed with an untrusted key are refused.
#include "transport/auth.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/base64url.hpp"
#include "schemas/jose.hpp"

namespace {

namespace jose = schemas::jose;
using transport::auth_error;
using transport::principal;
constexpr std::int64_t now = 1'800'000'000;

const jose::private_key& ec_key() {
  static const auto k = jose::private_key::generate_ec_p256();
  return k;
}
const jose::private_key& stranger_key() {
  static const auto k = jose::private_key::generate_ec_p256();
  return k;
}

transport::issuer_config config() {
  transport::issuer_config c;
  c.keys.push_back({"ec-1", ec_key().public_part()});
  c.issuer = "https://issuer.example";
  c.audience = "yna";
  return c;
}

bool digits(std::string_view s) {
  if (s.size() < 6 || s.size() > 15) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

using answer = schemas::result<principal, auth_error>;

void same(const answer& a, const answer& b) {
  FUZZ_CHECK(a.has_value() == b.has_value());
  if (!a) {
    FUZZ_CHECK(a.error() == b.error());
    return;
  }
  FUZZ_CHECK(a->sub == b->sub && a->msisdns == b->msisdns && a->device_id == b->device_id);
  FUZZ_CHECK(a->cnf_jwk_json == b->cnf_jwk_json && a->exp == b->exp);
  FUZZ_CHECK(a->cnf_key.has_value() == b->cnf_key.has_value());
  if (a->cnf_key) FUZZ_CHECK(*a->cnf_key == *b->cnf_key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const transport::token_verifier uncached(config(), 0);
  static const transport::token_verifier cached(config(), 64);
  FuzzedDataProvider in(data, size);
  const std::string header = in.ConsumeRandomLengthString(512);
  const std::string payload = in.ConsumeRemainingBytesAsString();
  if (header.empty() || payload.empty()) return 0;

  const std::string token = jose::sign_jwt(ec_key(), jose::alg::es256, header, payload);
  const answer r = uncached.verify_token(token, now);
  if (std::getenv("FUZZ_VERBOSE"))
    std::fprintf(stderr, "verify: %s\n", r ? "accepted" : std::string(transport::describe(r.error())).c_str());
  same(r, cached.verify_token(token, now));
  same(r, cached.verify_authorization("Bearer " + token, now));  // a cache hit when accepted
  if (r) {
    FUZZ_CHECK(header.find("ES256") != std::string::npos);
    FUZZ_CHECK(!r->sub.empty());
    FUZZ_CHECK(!r->msisdns.empty());
    for (std::size_t i = 0; i < r->msisdns.size(); ++i) {
      FUZZ_CHECK(digits(r->msisdns[i]));
      FUZZ_CHECK(r->owns(r->msisdns[i]) && r->owns("+" + r->msisdns[i]));
      for (std::size_t j = 0; j < i; ++j) FUZZ_CHECK(r->msisdns[i] != r->msisdns[j]);
    }
    FUZZ_CHECK(r->exp >= now - 30);
    if (r->cnf_key) {
      FUZZ_CHECK(r->cnf_key->is_rsa() && !r->cnf_jwk_json.empty());
      auto k = jose::public_key::from_jwk(r->cnf_jwk_json);
      FUZZ_CHECK(k.has_value() && *k == *r->cnf_key);
    }
  }

  // Flip one bit of the signature: never accepted.
  auto parts = jose::split_jwt(token);
  if (!parts) {  // only when the signed token is over max_jwt_bytes
    FUZZ_CHECK(token.size() > jose::max_jwt_bytes);
    return 0;
  }
  std::string sig = parts->signature;
  FUZZ_CHECK(sig.size() == 64);
  sig[payload.size() % 64] ^= static_cast<char>(1 << (header.size() % 8));
  const std::string forged = std::string(parts->signing_input) + "." + schemas::base64url_encode(sig);
  const answer f = cached.verify_token(forged, now);
  FUZZ_CHECK(!f.has_value());
  if (r) FUZZ_CHECK(f.error() == auth_error::bad_signature);

  const std::string stranger = jose::sign_jwt(stranger_key(), jose::alg::es256, header, payload);
  FUZZ_CHECK(!cached.verify_token(stranger, now).has_value());
  return 0;
}
