// The Identity header and PASSporT parsers (schemas/passport.hpp, contract §11) on
// arbitrary bytes. The first byte picks the shape: even, the rest is an Identity header
// value (parse_identity_header, then decode of its token); odd, the rest is
// "<header JSON>\n<claims JSON>", base64url-encoded here into a token with a dummy
// signature, so the search reaches the JSON readers directly. Properties:
//  - parse_identity_header: a success has a token without ';' and with no blank at
//    either end; alg, when given, is ES256;
//  - decode: a success is ES256, typ "passport", ppt "shaken" (attest A..C, origid
//    1..128 bytes, no div) or "div" (a div number), an https x5u, orig and 1..16 dest
//    numbers of digits only; the signing input is the token's first two parts;
//  - the decoded claims, signed again (schemas::passport::sign) and decoded, are equal
//    and the signature verifies (when the new token is within max_passport_bytes);
//  - check_call never throws, and agrees with its inputs for the decoded numbers.
#include "schemas/passport.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/base64url.hpp"

namespace {

namespace pp = schemas::passport;

bool digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

const schemas::jose::private_key& signing_key() {
  static const auto k = schemas::jose::private_key::generate_ec_p256();
  return k;
}

void check_decoded(std::string_view token) {
  auto d = pp::decode(token);
  if (!d) return;
  FUZZ_CHECK(d->head.alg == "ES256" && d->head.typ == "passport");
  FUZZ_CHECK(d->head.x5u.starts_with("https://"));
  FUZZ_CHECK(digits(d->body.orig));
  FUZZ_CHECK(!d->body.dest.empty() && d->body.dest.size() <= 16);
  for (const auto& t : d->body.dest) FUZZ_CHECK(digits(t));
  if (d->head.ppt == "shaken") {
    FUZZ_CHECK(d->body.attest >= 'A' && d->body.attest <= 'C');
    FUZZ_CHECK(!d->body.origid.empty() && d->body.origid.size() <= 128);
    FUZZ_CHECK(!d->body.div);
  } else {
    FUZZ_CHECK(d->head.ppt == "div");
    FUZZ_CHECK(d->body.div && digits(*d->body.div));
  }
  FUZZ_CHECK(token.substr(0, d->signing_input.size()) == d->signing_input);
  FUZZ_CHECK(token.size() > d->signing_input.size() && token[d->signing_input.size()] == '.');

  const std::string again = pp::sign(signing_key(), d->head.x5u, d->body);
  // A real signature is longer than the harness's dummy one: a token near the size limit
  // may be over it once signed again.
  if (again.size() > pp::max_passport_bytes) return;
  auto d2 = pp::decode(again);
  FUZZ_CHECK(d2.has_value());
  FUZZ_CHECK(d2->body == d->body && d2->head.x5u == d->head.x5u && d2->head.ppt == d->head.ppt);
  FUZZ_CHECK(pp::signature_ok(*d2, signing_key().public_part()));

  const auto ok = pp::check_call(d->body, d->body.orig, d->body.dest.back(), d->body.iat);
  FUZZ_CHECK(!ok.has_value());
  const auto late = pp::check_call(d->body, d->body.orig, d->body.dest.back(), d->body.iat + 61);
  FUZZ_CHECK(late == pp::failure::stale);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    auto h = pp::parse_identity_header(in);
    if (!h) return 0;
    FUZZ_CHECK(!h->token.empty() && h->token.find(';') == std::string::npos);
    FUZZ_CHECK(h->token.front() != ' ' && h->token.back() != ' ');
    FUZZ_CHECK(!h->alg || *h->alg == "ES256");
    check_decoded(h->token);
    return 0;
  }
  const auto nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string token = schemas::base64url_encode(in.substr(0, nl)) + "." +
                            schemas::base64url_encode(in.substr(nl + 1)) + "." + schemas::base64url_encode("sig");
  check_decoded(token);
  return 0;
}
