#pragma once
// JOSE for the engine: compact JWS (RFC 7515) with exactly two algorithms, RS256 and
// ES256 (RFC 7518 §3.3, §3.4), their keys as PEM and JWK (RFC 7517), sign and verify.
// Nothing here decides whether a token is acceptable (claims, issuers, clocks): that
// policy lives with its users (transport/auth, the PoP check).
//
// Threads: free functions are safe from any thread. public_key and private_key are
// immutable handles sharing one OpenSSL key; copies are cheap and may be used
// concurrently from many threads (OpenSSL 3 allows concurrent use of an EVP_PKEY).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "schemas/result.hpp"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY; kept out of this header.

namespace schemas::jose {

enum class jose_error {
  malformed,        // not a compact JWS / not PEM / not a JWK
  unsupported_alg,  // an algorithm or key type other than RS256/ES256, RSA>=2048/P-256
  bad_key,          // a key of the right type that is unusable (too short, off-curve...)
  bad_signature,
  crypto_failure,   // OpenSSL failed for a reason that is not the input's fault
};
[[nodiscard]] std::string_view to_string(jose_error e) noexcept;

enum class alg { rs256, es256 };

// Exactly "RS256" or "ES256" (case-sensitive, RFC 7515 §4.1.1). Everything else,
// notably "none", "HS256" and "RS384", is nullopt: the caller must reject it.
[[nodiscard]] std::optional<alg> parse_alg(std::string_view name) noexcept;
[[nodiscard]] std::string_view to_string(alg a) noexcept;

// Tokens larger than this are refused before any decoding.
inline constexpr std::size_t max_jwt_bytes = 16 * 1024;

struct jwt_view {
  std::string header_json;     // decoded, not yet parsed
  std::string payload_json;    // decoded, not yet parsed
  std::string_view signing_input;  // "<header>.<payload>", a view into the caller's token
  std::string signature;       // decoded bytes; may be empty (e.g. alg "none")
};

// Splits a compact JWS into its three base64url parts and decodes them.
// On success the signing_input views into `compact`, which must outlive the view.
// malformed: over max_jwt_bytes, not exactly three '.'-separated parts, an empty
// header or payload, or a part that is not canonical unpadded base64url.
[[nodiscard]] result<jwt_view, jose_error> split_jwt(std::string_view compact);

namespace detail {
struct key_access;  // jose_keys.cpp: builds keys from OpenSSL handles
}

// A public key usable for RS256 (RSA, 2048..16384 bits) or ES256 (EC P-256).
// Other key types are refused when loading, so a public_key is always one of the two.
class public_key {
 public:
  // SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), PKCS#1 ("BEGIN RSA PUBLIC KEY"), an
  // X.509 certificate, or a private key PEM (only its public half is kept).
  // malformed: no key found; unsupported_alg: another key type or curve;
  // bad_key: RSA under 2048 bits or over 16384.
  [[nodiscard]] static result<public_key, jose_error> from_pem(std::string_view pem);

  // The public half of an OpenSSL key already parsed (a certificate's, X509_get0_pubkey):
  // the handle is shared (up-referenced), the same checks as from_pem. Cheaper than a PEM
  // round trip through OpenSSL 3's decoders.
  [[nodiscard]] static result<public_key, jose_error> from_native(evp_pkey_st* pkey);

  // A public JWK object: {"kty":"RSA","n","e"} or {"kty":"EC","crv":"P-256","x","y"}.
  // Other members (kid, alg, use...) are ignored; private members are not read.
  // malformed: not a JSON object or a member missing/mistyped/not base64url;
  // unsupported_alg: another kty or crv; bad_key: short RSA, point not on curve...
  [[nodiscard]] static result<public_key, jose_error> from_jwk(std::string_view jwk_json);

  // The required members only, in RFC 7638 order with no whitespace, so that
  // base64url(sha256(to_jwk_json())) is the key's JWK thumbprint.
  [[nodiscard]] std::string to_jwk_json() const;
  // SubjectPublicKeyInfo PEM.
  [[nodiscard]] std::string to_pem() const;

  [[nodiscard]] bool is_rsa() const noexcept { return kind_ == kind::rsa; }
  [[nodiscard]] bool is_ec_p256() const noexcept { return kind_ == kind::ec_p256; }
  // Size of the key in bits (RSA: the modulus).
  [[nodiscard]] int bits() const noexcept;
  // An RSA key of 2048 to 4096 bits with public exponent 65537: the only device keys
  // accepted for PoP (contract §3a: an odd exponent or modulus makes each bogus PoP
  // verification costly). False for EC keys.
  [[nodiscard]] bool is_device_grade_rsa() const noexcept;
  [[nodiscard]] evp_pkey_st* native_handle() const noexcept { return pkey_.get(); }

  // Same key material (not the same object).
  friend bool operator==(const public_key& a, const public_key& b) noexcept;

 private:
  enum class kind { rsa, ec_p256 };
  public_key(std::shared_ptr<evp_pkey_st> pkey, kind k) : pkey_(std::move(pkey)), kind_(k) {}
  friend struct detail::key_access;

  std::shared_ptr<evp_pkey_st> pkey_;
  kind kind_;
};

// A private key for RS256 or ES256. Same loading rules as public_key.
class private_key {
 public:
  // Fresh keys from OpenSSL's CSPRNG. Throws std::invalid_argument for bits outside
  // 2048..16384 and std::runtime_error if OpenSSL cannot make a key (start-up only).
  [[nodiscard]] static private_key generate_rsa(int bits = 2048);
  [[nodiscard]] static private_key generate_ec_p256();

  // PKCS#8 or traditional ("BEGIN RSA/EC PRIVATE KEY"), unencrypted.
  [[nodiscard]] static result<private_key, jose_error> from_pem(std::string_view pem);
  // Unencrypted PKCS#8 ("BEGIN PRIVATE KEY").
  [[nodiscard]] std::string to_pem() const;

  [[nodiscard]] public_key public_part() const;
  [[nodiscard]] bool is_rsa() const noexcept { return public_.is_rsa(); }
  [[nodiscard]] bool is_ec_p256() const noexcept { return public_.is_ec_p256(); }
  [[nodiscard]] evp_pkey_st* native_handle() const noexcept { return pkey_.get(); }

 private:
  private_key(std::shared_ptr<evp_pkey_st> pkey, public_key pub)
      : pkey_(std::move(pkey)), public_(std::move(pub)) {}
  friend struct detail::key_access;
  std::shared_ptr<evp_pkey_st> pkey_;
  public_key public_;  // derived once: public-only copy for verification and JWK
};

// True only if `signature` is a valid `a` signature of `signing_input` under `key`
// and the key's type matches the algorithm (RS256 needs RSA, ES256 needs P-256):
// RS256 = RSASSA-PKCS1-v1_5 with SHA-256, signature exactly the modulus size;
// ES256 = ECDSA P-256 with SHA-256, signature exactly 64 bytes r||s (RFC 7518 §3.4).
[[nodiscard]] bool verify(const public_key& key, alg a, std::string_view signing_input,
                          std::string_view signature);

// The raw JWS signature bytes (ES256: 64 bytes r||s). Throws std::invalid_argument
// when the key type does not match `a` (a programming error), std::runtime_error
// if OpenSSL fails.
[[nodiscard]] std::string sign(const private_key& key, alg a, std::string_view signing_input);

// "<b64u(header)>.<b64u(payload)>.<b64u(signature)>". The caller supplies the
// header JSON and is responsible for its "alg" matching `a`.
[[nodiscard]] std::string sign_jwt(const private_key& key, alg a, std::string_view header_json,
                                   std::string_view payload_json);

}  // namespace schemas::jose
