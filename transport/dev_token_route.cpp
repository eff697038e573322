#include "transport/dev_token_route.hpp"

#include <simdjson.h>

#include "schemas/api.hpp"
#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"
#include "schemas/jose.hpp"
#include "schemas/json_writer.hpp"

namespace transport {

schemas::result<std::string, std::string> mint_dev_token(std::string_view body, const schemas::dev_issuer& issuer,
                                                         const dev_token_settings& settings, std::int64_t now) {
  using fail = schemas::failure<std::string>;
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  if (parser.parse(body.data(), body.size()).get_object().get(obj)) return fail{"the body must be a JSON object"};

  std::string_view msisdn_text;
  if (obj["msisdn"].get_string().get(msisdn_text)) return fail{"msisdn must be a string (an E.164 number)"};
  auto msisdn = schemas::normalize_msisdn(msisdn_text);
  if (!msisdn) return fail{"msisdn must be an E.164 number (6 to 15 digits, '+' optional)"};

  simdjson::dom::object jwk;
  if (obj["jwk"].get_object().get(jwk)) return fail{"jwk must be the device's public RSA key as a JWK object"};
  for (std::string_view private_member : {"d", "p", "q", "dp", "dq", "qi"})
    if (jwk[private_member].error() != simdjson::NO_SUCH_FIELD)
      return fail{"jwk must be a public key: it has the private member '" + std::string(private_member) + "'"};
  auto key = schemas::jose::public_key::from_jwk(simdjson::minify(jwk));
  if (!key || !key->is_rsa())
    return fail{"jwk must be a public RSA JWK (kty RSA, n, e; 2048 bits or more): PoP tokens are RS256"};
  const std::string jwk_json = key->to_jwk_json();

  std::string device_id;
  if (auto v = obj["deviceId"]; v.error() != simdjson::NO_SUCH_FIELD) {
    std::string_view d;
    if (v.get_string().get(d) || !schemas::is_printable(d, 128))
      return fail{"deviceId must be 1 to 128 printable characters"};
    device_id = d;
  } else {
    device_id = "web-" + schemas::base64url_encode(schemas::to_bytes(schemas::sha256(jwk_json))).substr(0, 16);
  }

  schemas::access_claims c;
  c.sub = "dev-" + *msisdn;
  c.msisdns = {*msisdn};
  c.device_id = device_id;
  c.cnf_jwk_json = jwk_json;
  c.iat = now;
  c.exp = now + settings.ttl_s;
  c.aud = settings.audience;
  const std::string token = schemas::mint_access_token(issuer, c);

  schemas::json_writer w(token.size() + 96);
  w.begin_object().field("accessToken", std::string_view(token)).field("expiresIn", settings.ttl_s);
  w.field("deviceId", std::string_view(device_id)).end_object();
  return w.take();
}

}  // namespace transport
