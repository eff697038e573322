// Key loading on arbitrary bytes: public_key::from_jwk (a token's cnf.jwk, attacker
// supplied) and from_pem. Properties of a loaded key:
//  - it is exactly one of RSA or P-256;
//  - to_jwk_json() loads back to an equal key, and is a fixed point;
//  - to_pem() loads back to an equal key;
//  - it refuses a signature that is not one (no crash on verify with odd sizes).
#include "schemas/jose.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

namespace jose = schemas::jose;

void check(const jose::public_key& k, std::string_view sig) {
  FUZZ_CHECK(k.is_rsa() != k.is_ec_p256());
  const std::string jwk = k.to_jwk_json();
  auto back = jose::public_key::from_jwk(jwk);
  FUZZ_CHECK(back.has_value() && *back == k);
  FUZZ_CHECK(back->to_jwk_json() == jwk);
  auto pem = jose::public_key::from_pem(k.to_pem());
  FUZZ_CHECK(pem.has_value() && *pem == k);
  FUZZ_CHECK(!jose::verify(k, k.is_rsa() ? jose::alg::rs256 : jose::alg::es256, "a.b", sig));
  FUZZ_CHECK(!jose::verify(k, k.is_rsa() ? jose::alg::es256 : jose::alg::rs256, "a.b", sig));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto k = jose::public_key::from_jwk(in)) check(*k, in);
  if (auto k = jose::public_key::from_pem(in)) check(*k, in);
  return 0;
}
