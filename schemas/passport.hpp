#pragma once
// SHAKEN PASSporTs (RFC 8225, RFC 8588; ATIS-1000074) and the SIP Identity header value
// that carries them (RFC 8224 §4.1), for contract §11: the format, the claims, the
// signature. No certificates (schemas/sti_cert.hpp), no fetching, no clock reading, no
// policy about who may sign (transport/caller_id.hpp).
//
// A PASSporT is a compact ES256 JWS with header {"alg":"ES256","ppt":"shaken",
// "typ":"passport","x5u":<certificate URL>} and claims {"attest","dest":{"tn":[…]},"iat",
// "orig":{"tn"},"origid"}; a diversion PASSporT (RFC 8946) has ppt "div" and a "div"
// claim naming the diverting number. Telephone numbers are in RFC 8224 §8.3 canonical
// form: digits only, no '+'.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/jose.hpp"
#include "schemas/result.hpp"

namespace schemas::passport {

// TNVerificationStatus of the reference.
enum class verification : std::uint8_t { none, passed, failed };
// "No-TN-Validation", "TN-Validation-Passed", "TN-Validation-Failed".
[[nodiscard]] std::string_view to_string(verification v) noexcept;
[[nodiscard]] std::optional<verification> parse_verification(std::string_view s) noexcept;

// Why a PASSporT did not verify: the reason recorded on the /start event (kebab-case,
// stable: the log and the tests name them).
enum class failure : std::uint8_t {
  malformed,          // not a compact JWS, header or claims not the JSON objects expected
  bad_alg,            // alg other than ES256 (none, HS256, RS256…)
  bad_typ,            // typ not "passport"
  bad_ppt,            // ppt neither "shaken" nor "div" (or not the one expected)
  bad_claims,         // attest, orig, dest, iat or origid missing or mistyped
  bad_x5u,            // x5u missing, not an https URL
  x5u_not_allowed,    // x5u outside --sti-x5u-allow, or at an address that may not be reached
  x5u_unavailable,    // fetching x5u failed (refused, not 200, timeout, too large)
  bad_certificate,    // x5u's body holds no usable certificate (or not a P-256 key)
  untrusted_chain,    // the chain does not lead to a root of --sti-trust
  expired_certificate,// a certificate of the chain is expired or not yet valid
  no_tnauthlist,      // the signing certificate has no TNAuthList extension (RFC 8226)
  bad_signature,      // the signature does not verify under the certificate's key
  stale,              // iat more than the allowed skew in the past
  future,             // iat more than the allowed skew in the future
  orig_mismatch,      // orig.tn is not the call's from
  dest_mismatch,      // dest.tn does not name the call's to
  identity_header,    // the Identity header value is malformed (params, alg or ppt param)
};
[[nodiscard]] std::string_view to_string(failure f) noexcept;
[[nodiscard]] std::optional<failure> parse_failure(std::string_view s) noexcept;

struct claims {
  char attest = 'A';                  // 'A', 'B' or 'C' (RFC 8588)
  std::string orig;                   // orig.tn
  std::vector<std::string> dest;      // dest.tn
  std::int64_t iat = 0;               // seconds since the epoch
  std::string origid;                 // a UUID (RFC 8588)
  std::optional<std::string> div;     // div.tn: the diverting number (ppt "div" only)
  bool operator==(const claims&) const = default;
};

struct header {
  std::string alg, typ, ppt, x5u;
};

// A PASSporT split and read, its signature not yet checked.
struct decoded {
  header head;
  claims body;
  std::string signing_input;  // "<b64u header>.<b64u claims>"
  std::string signature;      // raw r||s
};

// Tokens longer than this are refused unread (a SHAKEN PASSporT is about 400 bytes).
inline constexpr std::size_t max_passport_bytes = 4096;

// Reads a compact PASSporT. Checks shape, alg (ES256 only: "none", HS256 and RS256 are
// bad_alg), typ, ppt ("shaken" or "div"), x5u (https) and the claims' types; not the
// signature, the certificate, the clock or the call.
[[nodiscard]] result<decoded, failure> decode(std::string_view token);

// The RFC 8224 Identity header value: `<token>[;info=<url>][;alg=ES256][;ppt=shaken]`,
// parameters in any order, others ignored; also a bare token. A given `alg` must be
// ES256 and a given `ppt` must match the token's (checked by the caller).
struct identity_header {
  std::string token;
  std::optional<std::string> info, alg, ppt;
};
[[nodiscard]] result<identity_header, failure> parse_identity_header(std::string_view value);

// True when `d`'s signature verifies under `key` (an EC P-256 key).
[[nodiscard]] bool signature_ok(const decoded& d, const jose::public_key& key);

// The checks against the call: iat within `skew_s` of `now_s` (stale / future), orig.tn
// equal to `from`, `to` among dest.tn. Numbers are compared in canonical form (digits).
[[nodiscard]] std::optional<failure> check_call(const claims& c, std::string_view from, std::string_view to,
                                                std::int64_t now_s, std::int64_t skew_s = 60);

// Signs a PASSporT with `key` (EC P-256): ppt "shaken", or "div" when `c.div` is set.
// Claims are written with their keys in lexicographic order and no whitespace (RFC 8225
// §9's deterministic form). Throws std::invalid_argument for a key that is not P-256.
[[nodiscard]] std::string sign(const jose::private_key& key, std::string_view x5u, const claims& c);

// Canonical form of a telephone number (RFC 8224 §8.3): its digits, '+' and visual
// separators ('-', '.', '(', ')', ' ') dropped; nullopt if anything else is in it or no
// digit is.
[[nodiscard]] std::optional<std::string> canonical_tn(std::string_view tn);

}  // namespace schemas::passport
