#pragma once
// POST /dev/token: development access tokens for the web softphone (transport/phone/).
// Served only while the engine runs on its development issuer (no --jwt-public-key);
// main.cpp sets api_options::dev_token then, so with a real issuer the path is 404.
// Anyone who can reach the engine can mint a token for any number: development only,
// like the issuer key in the data folder.
//
// Body: {"msisdn": "+14250000001", "jwk": {public RSA JWK}, "deviceId": "…"}
//   msisdn    E.164 (6 to 15 digits, '+' optional)
//   jwk       the device's PoP key, public RSA JWK (kty, n, e), 2048 bits or more
//   deviceId  optional, 1 to 128 printable characters; default: "web-" + the first 16
//             characters of the key's JWK thumbprint
// Answer: {"accessToken": "…", "expiresIn": 3600, "deviceId": "…"}; the token carries
// sub "dev-<msisdn>", msisdns [msisdn], device_id, cnf.jwk = the key.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "schemas/dev_issuer.hpp"
#include "schemas/result.hpp"

namespace transport {

struct dev_token_settings {
  std::int64_t ttl_s = 3600;
  std::optional<std::string> audience;  // --jwt-audience, when the verifier checks one
};

// The answer body, or what is wrong with the request (400 INVALID_FIELD). `now` in
// seconds since the epoch. Any thread (the issuer is only read).
[[nodiscard]] schemas::result<std::string, std::string> mint_dev_token(std::string_view body,
                                                                       const schemas::dev_issuer& issuer,
                                                                       const dev_token_settings& settings,
                                                                       std::int64_t now);

}  // namespace transport
