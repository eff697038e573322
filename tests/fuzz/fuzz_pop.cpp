// PoP (X-Authorization) verification on arbitrary bytes. The input is split at '\n'
// into token, method, target and body (pop_request.hpp); the device key (cnf.jwk) is a
// fixed RSA key generated once per process (parsed, as
// transport::principal::cnf_key carries it). Properties:
//  - verify never succeeds: the fuzzer cannot sign with the device key;
//  - so it never gets as far as the replay cache (no replayed, no cache_full), and
//    the cache stays empty;
//  - without a device key, or with a P-256 one, it fails with missing, malformed,
//    unsupported_alg or no_cnf.
#include "transport/pop.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "pop_request.hpp"
#include "schemas/jose.hpp"

namespace {

namespace jose = schemas::jose;
using transport::pop_error;
constexpr std::int64_t now = 1'800'000'000;

const jose::public_key& device_key() {
  static const jose::public_key k = jose::private_key::generate_rsa(2048).public_part();
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static transport::pop_verifier verifier({});
  const fuzz::split_request req(std::string_view(reinterpret_cast<const char*>(data), size));

  auto s = verifier.verify(req.token, &device_key(), "fuzz-key", req.view(), now);
  if (s) {
    std::fprintf(stderr, "a fuzzed PoP token verified\n");
    std::abort();
  }
  FUZZ_CHECK(s.error() != pop_error::replayed && s.error() != pop_error::cache_full);
  FUZZ_CHECK(verifier.remembered() == 0);

  static const jose::public_key ec = jose::private_key::generate_ec_p256().public_part();
  for (const jose::public_key* key : {static_cast<const jose::public_key*>(nullptr), &ec}) {
    auto no_cnf = verifier.verify(req.token, key, "fuzz-key", req.view(), now);
    FUZZ_CHECK(!no_cnf.has_value());
    const pop_error e = no_cnf.error();
    FUZZ_CHECK(e == pop_error::missing || e == pop_error::malformed || e == pop_error::unsupported_alg ||
               e == pop_error::no_cnf);
  }
  return 0;
}
