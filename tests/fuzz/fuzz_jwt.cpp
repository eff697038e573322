// The bearer-token path on arbitrary bytes, used as the Authorization header value.
// The verifier trusts one RSA and one P-256 key, generated once per process, and a
// fixed issuer. Properties:
//  - split_jwt: a success has non-empty header and payload, its signing_input is the
//    input up to the second '.', and re-encoding the parts gives the input back
//    (one accepted spelling per token);
//  - verify_authorization never accepts: the fuzzer cannot forge RS256/ES256;
//  - verify_authorization("Bearer " + t) and verify_token(t) agree.
#include "transport/auth.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/base64url.hpp"
#include "schemas/jose.hpp"

namespace {

namespace jose = schemas::jose;
constexpr std::int64_t now = 1'800'000'000;

const transport::token_verifier& verifier() {
  static const transport::token_verifier v([] {
    transport::issuer_config c;
    c.keys.push_back({"rsa-1", jose::private_key::generate_rsa(2048).public_part()});
    c.keys.push_back({"ec-1", jose::private_key::generate_ec_p256().public_part()});
    c.issuer = "https://issuer.example";
    c.audience = "yna";
    return c;
  }());
  return v;
}

void check_split(std::string_view token) {
  auto jwt = jose::split_jwt(token);
  if (!jwt) return;
  FUZZ_CHECK(token.size() <= jose::max_jwt_bytes);
  FUZZ_CHECK(!jwt->header_json.empty() && !jwt->payload_json.empty());
  const auto dot2 = token.rfind('.');
  FUZZ_CHECK(jwt->signing_input.data() == token.data());
  FUZZ_CHECK(jwt->signing_input == token.substr(0, dot2));
  const std::string again = schemas::base64url_encode(jwt->header_json) + "." +
                            schemas::base64url_encode(jwt->payload_json) + "." +
                            schemas::base64url_encode(jwt->signature);
  FUZZ_CHECK(again == token);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const auto& v = verifier();

  check_split(header);
  auto r = v.verify_authorization(header, now);
  if (r) {
    std::fprintf(stderr, "a fuzzed Authorization header verified (sub=%s)\n", r->sub.c_str());
    std::abort();
  }

  // The same bytes as a bare token, also with the scheme in front.
  auto bare = v.verify_token(header, now);
  FUZZ_CHECK(!bare.has_value());
  const std::string with_scheme = "Bearer " + std::string(header);
  auto prefixed = v.verify_authorization(with_scheme, now);
  FUZZ_CHECK(!prefixed.has_value());
  // trim() only strips spaces and tabs, so the two agree unless the token has them at
  // its ends (then the header form trims them and the bare form does not).
  const bool padded = !header.empty() && (header.front() == ' ' || header.front() == '\t' ||
                                          header.back() == ' ' || header.back() == '\t');
  if (!padded && !header.empty()) FUZZ_CHECK(bare.error() == prefixed.error());
  return 0;
}
