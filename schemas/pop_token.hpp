#pragma once
// Building T-Mobile-format PoP tokens (contract §2), the client side of
// transport/pop.hpp: for yna-tool pop, the load generator and the tests. The engine
// never builds these; it only verifies them.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "schemas/jose.hpp"

namespace schemas {

// (name, value) in signing order: names go into ehts joined by ';', values are
// concatenated (nothing between) and hashed into edts.
using pop_claims = std::vector<std::pair<std::string, std::string>>;

// An RS256 PoP JWT: header {"alg":"RS256","typ":"JWT"}, claims
// {"iat","exp","ehts","edts","jti","v":"1"}. An empty jti gets a random one.
std::string build_pop_token(const jose::private_key& device_key, const pop_claims& signed_values, std::int64_t iat,
                            std::int64_t exp, std::string jti = {});

// The usual coverage for one request: Authorization, uri, http-method and body (the
// body only when not empty), valid from `now` for `ttl_s` seconds.
std::string build_request_pop(const jose::private_key& device_key, std::string_view method, std::string_view uri,
                              std::string_view body, std::string_view authorization, std::int64_t now,
                              std::int64_t ttl_s = 120);

}  // namespace schemas
