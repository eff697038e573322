#include "schemas/pop_token.hpp"

#include <openssl/rand.h>

#include <stdexcept>

#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"
#include "schemas/json_writer.hpp"

namespace schemas {

std::string build_pop_token(const jose::private_key& device_key, const pop_claims& signed_values, std::int64_t iat,
                            std::int64_t exp, std::string jti) {
  if (jti.empty()) {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("no randomness for a PoP jti");
    jti = base64url_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
  }
  std::string ehts;
  sha256_hasher h;
  for (const auto& [name, value] : signed_values) {
    if (!ehts.empty()) ehts.push_back(';');
    ehts += name;
    h.update(value);
  }
  json_writer w(256);
  w.begin_object().field("iat", iat).field("exp", exp).field("ehts", std::string_view(ehts));
  w.field("edts", std::string_view(base64url_encode(to_bytes(h.finish()))));
  w.field("jti", std::string_view(jti)).field("v", "1").end_object();
  return jose::sign_jwt(device_key, jose::alg::rs256, R"({"alg":"RS256","typ":"JWT"})", w.str());
}

std::string build_request_pop(const jose::private_key& device_key, std::string_view method, std::string_view uri,
                              std::string_view body, std::string_view authorization, std::int64_t now,
                              std::int64_t ttl_s) {
  pop_claims v{{"Authorization", std::string(authorization)}, {"uri", std::string(uri)},
               {"http-method", std::string(method)}};
  if (!body.empty()) v.emplace_back("body", std::string(body));
  return build_pop_token(device_key, v, now, now + ttl_s);
}

}  // namespace schemas
