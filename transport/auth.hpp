#pragma once
// Bearer access-token verification (contract §2): the policy that turns an
// `Authorization` header value into the principal a request acts as. No I/O and no
// HTTP types: the session passes the header text and the clock reading, and maps
// auth_error to 401 with reason_code()/describe().
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/jose.hpp"
#include "schemas/result.hpp"

namespace transport {

// Who the request is from, taken from a verified access token.
struct principal {
  std::string sub;
  std::vector<std::string> msisdns;  // normalised: digits only, no '+'
  std::string device_id;             // empty when the token has none
  std::string cnf_jwk_json;          // cnf.jwk's raw (minified) JSON, empty when absent
  // cnf.jwk parsed once when the token was verified (an RSA key), for PoP; nullopt when
  // absent or not a usable RSA key.
  std::optional<schemas::jose::public_key> cnf_key;
  // SHA-256 (raw bytes) of the cnf key's RFC 7638 JWK thumbprint input: the device key
  // the PoP replay cache remembers jtis under (contract §3a). Empty without cnf_key.
  std::string cnf_thumbprint;
  std::int64_t exp = 0;              // seconds since the epoch
  // A gateway (contract §11): claim `gateway: true` and `sub` in --gateway-sub. It speaks
  // for callers outside the engine: it may /start from any number, owns none (msisdns
  // empty), and is the MO party of the calls it starts.
  bool gateway = false;
  // The token's `name` claim (contract §10): a display name, told to the other party as
  // originatorName / receiverName. Empty when absent; cut to 256 bytes.
  std::string name;

  // True if the token may act for `msisdn` (digits, an optional leading '+').
  [[nodiscard]] bool owns(std::string_view msisdn) const;
};

enum class auth_error {
  missing,          // no Authorization header (or an empty one)
  malformed,        // not "Bearer <token>", not a compact JWS, header not JSON
  unsupported_alg,  // alg other than RS256/ES256 ("none", HS256, ...)
  unknown_key,      // kid not configured, or no configured key fits the alg
  bad_signature,
  expired,          // now > exp + leeway
  not_yet_valid,    // nbf > now + leeway
  wrong_issuer,
  wrong_audience,
  bad_claims,       // payload not an object, or sub/msisdns/exp/... missing or mistyped
  issued_in_future, // iat > now + leeway
  lifetime_too_long,// exp - iat (or exp - now without iat) over issuer_config::max_lifetime_s
  bad_device_key,   // cnf.jwk present but not RSA 2048..4096 bits with e = 65537
};

// The ErrorInfo reasonCode: "TOKEN_EXPIRED" for expired, else "UNAUTHORIZED".
[[nodiscard]] std::string_view reason_code(auth_error e) noexcept;
// One sentence for ErrorInfo.systemMessage. Never includes token contents.
[[nodiscard]] std::string_view describe(auth_error e) noexcept;

struct trusted_key {
  // Matched against the token's "kid"; a token without "kid" tries every key
  // whose type fits its alg, whatever their kid.
  std::string kid;
  schemas::jose::public_key key;
};

struct issuer_config {
  std::vector<trusted_key> keys;
  std::optional<std::string> issuer;    // when set, `iss` must equal it
  std::optional<std::string> audience;  // when set, `aud` must be or contain it
  std::int64_t leeway_s = 30;
  // Longest access-token lifetime accepted (exp - iat, or exp - now when the token has
  // no iat), seconds; 0: no bound (contract §3a, --max-token-lifetime).
  std::int64_t max_lifetime_s = 24 * 3600;
  // Subjects whose tokens with `gateway: true` are gateways (--gateway-sub; contract §11).
  std::vector<std::string> gateway_subs;
};

// Reads a PEM public key (or certificate) file for issuer_config::keys.
// Failure: a human-readable message naming the file. Start-up only.
[[nodiscard]] schemas::result<trusted_key, std::string> load_trusted_key_pem(
    const std::filesystem::path& path, std::string kid);

// Verifies access tokens against a fixed configuration. Immutable after
// construction; verify_authorization may be called from any number of threads.
// Verified tokens are cached by their SHA-256 until they expire (at most
// `cache_capacity` of them; when full, the least recently used is evicted), so a device's repeated requests cost a hash and a lookup
// instead of an RSA verify and a key parse; 0 disables the cache.
// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive,
// surrounding blanks ignored); nullopt when the value is not a Bearer credential.
std::optional<std::string_view> bearer_token(std::string_view authorization_header_value);

class token_verifier {
 public:
  explicit token_verifier(issuer_config config, std::size_t cache_capacity = 100'000);
  ~token_verifier();
  token_verifier(const token_verifier&) = delete;
  token_verifier& operator=(const token_verifier&) = delete;

  // `authorization_header_value` is the header's value as received (empty when the
  // header is absent); `now_s` is the current time in seconds since the epoch.
  // Checks, in order: scheme, JWS shape, alg, key selection, signature, exp, nbf,
  // iss, aud, then the claims the engine uses (sub, msisdns, device_id, cnf.jwk).
  [[nodiscard]] schemas::result<principal, auth_error> verify_authorization(
      std::string_view authorization_header_value, std::int64_t now_s) const;

  // The same, for a bare token (the WebSocket's access_token query parameter).
  [[nodiscard]] schemas::result<principal, auth_error> verify_token(std::string_view token,
                                                                    std::int64_t now_s) const;

  // Verified tokens held in the cache now (at most cache_capacity).
  [[nodiscard]] std::size_t cached() const;
  // Tokens evicted (least recently used) to make room, all time.
  [[nodiscard]] std::uint64_t evicted() const;
  // Forgets the cached tokens expired at `now_s` (before the gauges are read). Any thread.
  void forget_expired(std::int64_t now_s) const;

 private:
  struct cache;
  [[nodiscard]] schemas::result<principal, auth_error> verify_uncached(std::string_view token,
                                                                       std::int64_t now_s) const;
  issuer_config config_;
  std::unique_ptr<cache> cache_;
};

}  // namespace transport
