#pragma once
// The development token issuer (contract §8): when no issuer key is configured, the
// engine makes an RSA key pair in its data folder and `yna-tool token` mints access
// tokens with it. Never meant for production: anyone who can read the data folder
// can mint tokens.
//
// Files in data_dir:
//   dev-issuer.key.pem   PKCS#8 private key, RSA-2048, mode 0600
//   dev-issuer.pub.pem   its SubjectPublicKeyInfo, mode 0644 (for other verifiers)
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/jose.hpp"
#include "schemas/result.hpp"

namespace schemas {

struct dev_issuer {
  jose::private_key key;
  std::string kid;     // "dev"
  std::string issuer;  // "yna-dev"
};

inline constexpr std::string_view dev_issuer_kid = "dev";
inline constexpr std::string_view dev_issuer_name = "yna-dev";
inline constexpr std::string_view dev_issuer_key_file = "dev-issuer.key.pem";
inline constexpr std::string_view dev_issuer_pub_file = "dev-issuer.pub.pem";

// Loads the key pair from data_dir, creating data_dir and the pair if absent.
// Safe against concurrent callers (engine and CLI starting together): the key file
// appears atomically and is never replaced once it exists, so every process ends up
// with the same key. Rewrites the .pub.pem if it is missing or does not match.
// Failure: a human-readable message (I/O error, unreadable or non-RSA key file).
// Start-up only; blocking file I/O.
[[nodiscard]] result<dev_issuer, std::string> load_or_create_dev_issuer(
    const std::filesystem::path& data_dir);

struct access_claims {
  std::string sub;
  std::vector<std::string> msisdns;
  std::string device_id;                    // omitted from the token when empty
  std::optional<std::string> cnf_jwk_json;  // a JWK object, copied verbatim into cnf.jwk
  std::int64_t iat = 0;
  std::int64_t exp = 0;
  std::optional<std::string> aud;
};

// An RS256 compact JWT: header {"alg":"RS256","typ":"JWT","kid":<kid>}, payload
// {"iss","sub","msisdns",["device_id"],["cnf":{"jwk":…}],"iat","exp",["aud"]}.
// The caller guarantees cnf_jwk_json is valid JSON (e.g. public_key::to_jwk_json()).
[[nodiscard]] std::string mint_access_token(const dev_issuer& issuer, const access_claims& claims);

}  // namespace schemas
