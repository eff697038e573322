#include "transport/auth.hpp"

#include "schemas/api.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <fstream>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "schemas/digest.hpp"
#include "transport/detail/ascii.hpp"

namespace transport {

namespace jose = schemas::jose;
using detail::iequals;
constexpr auto trim = detail::trim_ows;
using schemas::failure;
using schemas::result;

namespace {

constexpr std::uintmax_t max_key_file_bytes = 1 << 20;

bool key_fits(const jose::public_key& key, jose::alg a) {
  return a == jose::alg::rs256 ? key.is_rsa() : key.is_ec_p256();
}

// One parser per thread: verify_authorization is const and called concurrently.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

struct header_fields {
  jose::alg alg;
  std::optional<std::string> kid;
};

result<header_fields, auth_error> parse_header(const std::string& json) {
  simdjson::dom::object obj;
  if (thread_parser().parse(json).get_object().get(obj) != simdjson::SUCCESS) return failure{auth_error::malformed};
  std::string_view alg_name;
  if (obj["alg"].get_string().get(alg_name) != simdjson::SUCCESS) return failure{auth_error::malformed};
  const auto alg = jose::parse_alg(alg_name);
  if (!alg) return failure{auth_error::unsupported_alg};
  // RFC 7515 §4.1.11: extensions listed in "crit" must be understood; we know none.
  if (obj["crit"].error() != simdjson::NO_SUCH_FIELD) return failure{auth_error::malformed};
  header_fields out{*alg, std::nullopt};
  auto kid = obj["kid"];
  if (kid.error() != simdjson::NO_SUCH_FIELD) {
    std::string_view text;
    if (kid.get_string().get(text) != simdjson::SUCCESS) return failure{auth_error::malformed};
    out.kid = std::string(text);
  }
  return out;
}

// A NumericDate (RFC 7519 §2): any JSON number. nullopt if absent; error if mistyped.
result<std::optional<double>, auth_error> numeric_date(simdjson::dom::object obj, std::string_view name) {
  auto field = obj[name];
  if (field.error() == simdjson::NO_SUCH_FIELD) return std::optional<double>{};
  double v = 0;
  if (field.get_double().get(v) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
  return std::optional<double>{v};
}

bool audience_matches(simdjson::dom::element aud, std::string_view wanted) {
  std::string_view one;
  if (aud.get_string().get(one) == simdjson::SUCCESS) return one == wanted;
  simdjson::dom::array list;
  if (aud.get_array().get(list) != simdjson::SUCCESS) return false;
  for (auto item : list) {
    if (item.get_string().get(one) == simdjson::SUCCESS && one == wanted) return true;
  }
  return false;
}

std::int64_t clamp_to_int64(double v) {
  constexpr double lo = static_cast<double>(std::numeric_limits<std::int64_t>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<std::int64_t>::max());
  if (v <= lo) return std::numeric_limits<std::int64_t>::min();
  if (v >= hi) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(std::floor(v));
}

constexpr std::size_t max_name_bytes = 256;

// sub, msisdns, device_id, cnf.jwk, gateway, name: the claims the engine acts on.
result<principal, auth_error> read_identity(simdjson::dom::object obj, const std::vector<std::string>& gateway_subs) {
  principal p;
  std::string_view text;
  if (obj["sub"].get_string().get(text) != simdjson::SUCCESS || text.empty()) return failure{auth_error::bad_claims};
  p.sub = std::string(text);

  bool gateway_claim = false;
  auto gw = obj["gateway"];
  if (gw.error() != simdjson::NO_SUCH_FIELD && gw.get_bool().get(gateway_claim) != simdjson::SUCCESS)
    return failure{auth_error::bad_claims};
  p.gateway = gateway_claim && std::find(gateway_subs.begin(), gateway_subs.end(), p.sub) != gateway_subs.end();

  if (!p.gateway) {  // a gateway owns no number: its msisdns, if any, are not read
    simdjson::dom::array msisdns;
    if (obj["msisdns"].get_array().get(msisdns) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
    for (auto item : msisdns) {
      if (item.get_string().get(text) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
      auto number = schemas::normalize_msisdn(text);
      if (!number) return failure{auth_error::bad_claims};
      if (std::find(p.msisdns.begin(), p.msisdns.end(), *number) == p.msisdns.end()) {
        p.msisdns.push_back(std::move(*number));
      }
    }
  }
  // A token that owns no number can do nothing; more likely a minting mistake.
  if (p.msisdns.empty() && !p.gateway) return failure{auth_error::bad_claims};

  auto name = obj["name"];
  if (name.error() != simdjson::NO_SUCH_FIELD) {
    if (name.get_string().get(text) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
    p.name = std::string(text.substr(0, max_name_bytes));
  }

  auto device = obj["device_id"];
  if (device.error() != simdjson::NO_SUCH_FIELD) {
    if (device.get_string().get(text) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
    p.device_id = std::string(text);
  }

  auto cnf = obj["cnf"];
  if (cnf.error() != simdjson::NO_SUCH_FIELD) {
    simdjson::dom::object cnf_obj;
    if (cnf.get_object().get(cnf_obj) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
    auto jwk = cnf_obj["jwk"];
    if (jwk.error() != simdjson::NO_SUCH_FIELD) {
      simdjson::dom::object jwk_obj;
      if (jwk.get_object().get(jwk_obj) != simdjson::SUCCESS) return failure{auth_error::bad_claims};
      p.cnf_jwk_json = simdjson::minify(jwk_obj);
    }
  }
  return p;
}

}  // namespace

bool principal::owns(std::string_view msisdn) const {
  const auto number = schemas::normalize_msisdn(msisdn);
  return number && std::find(msisdns.begin(), msisdns.end(), *number) != msisdns.end();
}

std::string_view reason_code(auth_error e) noexcept {
  return e == auth_error::expired ? "TOKEN_EXPIRED" : "UNAUTHORIZED";
}

std::string_view describe(auth_error e) noexcept {
  switch (e) {
    case auth_error::missing: return "The request has no access token: send 'Authorization: Bearer <token>'.";
    case auth_error::malformed: return "The Authorization header is not 'Bearer <token>' with a well-formed signed JWT.";
    case auth_error::unsupported_alg: return "The access token's algorithm is not accepted; only RS256 and ES256 are.";
    case auth_error::unknown_key: return "The access token is signed with a key this server does not trust (unknown kid).";
    case auth_error::bad_signature: return "The access token's signature does not verify.";
    case auth_error::expired: return "The access token has expired.";
    case auth_error::not_yet_valid: return "The access token is not valid yet (nbf is in the future).";
    case auth_error::wrong_issuer: return "The access token was not issued by the configured issuer.";
    case auth_error::wrong_audience: return "The access token is not meant for this audience.";
    case auth_error::bad_claims: return "The access token's claims are missing or invalid (sub, msisdns, exp, device_id, cnf).";
    case auth_error::issued_in_future: return "The access token's iat is in the future.";
    case auth_error::lifetime_too_long: return "The access token lives longer than this server accepts (exp - iat, --max-token-lifetime).";
    case auth_error::bad_device_key:
      return "The access token's cnf.jwk is not an RSA key of 2048 to 4096 bits with exponent 65537.";
  }
  return "The access token is not valid.";
}

result<trusted_key, std::string> load_trusted_key_pem(const std::filesystem::path& path, std::string kid) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return failure{"cannot read JWT public key " + path.string() + ": " + ec.message()};
  if (size > max_key_file_bytes) return failure{"JWT public key " + path.string() + " is too large"};
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return failure{"cannot read JWT public key " + path.string()};
  auto key = jose::public_key::from_pem(text.str());
  if (!key) {
    return failure{"JWT public key " + path.string() + " is not an RSA (>= 2048 bits) or P-256 public key (" +
                   std::string(jose::to_string(key.error())) + ")"};
  }
  return trusted_key{std::move(kid), std::move(*key)};
}

// Per shard: the tokens by key, in use order (LRU: the least recently used is evicted
// when the shard is full) and by expiry (expired ones are forgotten whenever the shard is
// touched, at the cost of the number forgotten). The lists point at the map's keys, which
// stay put while their entries live.
struct token_verifier::cache {
  struct entry {
    principal who;
    std::list<const std::string*>::iterator lru;
    std::multimap<std::int64_t, const std::string*>::iterator by_exp;
  };
  struct shard {
    std::mutex mu;
    std::unordered_map<std::string, entry> map;
    std::list<const std::string*> lru;  // front: most recently used
    std::multimap<std::int64_t, const std::string*> by_exp;
    std::uint64_t evicted = 0;
  };
  static constexpr std::size_t shard_count = 16;
  explicit cache(std::size_t capacity) : per_shard(std::max<std::size_t>(1, capacity / shard_count)) {}

  shard& for_key(const std::string& k) { return shards[static_cast<unsigned char>(k[0]) % shard_count]; }

  static void erase(shard& s, std::unordered_map<std::string, entry>::iterator it) {
    s.lru.erase(it->second.lru);
    s.by_exp.erase(it->second.by_exp);
    s.map.erase(it);
  }
  // Forgets the tokens expired at `now` (past the leeway: they would fail as expired).
  static void expire(shard& s, std::int64_t now, std::int64_t leeway) {
    while (!s.by_exp.empty() && now - leeway > s.by_exp.begin()->first) {
      auto it = s.map.find(*s.by_exp.begin()->second);
      assert(it != s.map.end());  // the three indexes hold the same tokens
      erase(s, it);
    }
  }

  std::optional<principal> find(const std::string& key, std::int64_t now, std::int64_t leeway) {
    shard& s = for_key(key);
    std::lock_guard lk(s.mu);
    expire(s, now, leeway);  // an expired token is verified again (and fails as expired)
    auto it = s.map.find(key);
    if (it == s.map.end()) return std::nullopt;
    s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
    return it->second.who;
  }

  void put(const std::string& key, const principal& who, std::int64_t now, std::int64_t leeway) {
    shard& s = for_key(key);
    std::lock_guard lk(s.mu);
    expire(s, now, leeway);
    if (auto it = s.map.find(key); it != s.map.end()) erase(s, it);  // another thread verified it too
    if (s.map.size() >= per_shard) {  // evict the least recently used: costs only a re-verify
      erase(s, s.map.find(*s.lru.back()));
      ++s.evicted;
    }
    auto it = s.map.emplace(key, entry{who, {}, {}}).first;
    s.lru.push_front(&it->first);
    it->second.lru = s.lru.begin();
    it->second.by_exp = s.by_exp.emplace(who.exp, &it->first);
  }

  void forget_expired(std::int64_t now, std::int64_t leeway) {
    for (auto& s : shards) {
      std::lock_guard lk(s.mu);
      expire(s, now, leeway);
    }
  }

  std::size_t per_shard;
  shard shards[shard_count];
};

token_verifier::token_verifier(issuer_config config, std::size_t cache_capacity)
    : config_(std::move(config)), cache_(cache_capacity > 0 ? std::make_unique<cache>(cache_capacity) : nullptr) {}

token_verifier::~token_verifier() = default;

std::size_t token_verifier::cached() const {
  if (!cache_) return 0;
  std::size_t n = 0;
  for (auto& s : cache_->shards) {
    std::lock_guard lk(s.mu);
    n += s.map.size();
  }
  return n;
}

std::uint64_t token_verifier::evicted() const {
  if (!cache_) return 0;
  std::uint64_t n = 0;
  for (auto& s : cache_->shards) {
    std::lock_guard lk(s.mu);
    n += s.evicted;
  }
  return n;
}

void token_verifier::forget_expired(std::int64_t now_s) const {
  if (cache_) cache_->forget_expired(now_s, config_.leeway_s);
}

std::optional<std::string_view> bearer_token(std::string_view value) {
  value = trim(value);
  const auto space = value.find_first_of(" \t");
  if (space == std::string_view::npos || !iequals(value.substr(0, space), "bearer")) return std::nullopt;
  return trim(value.substr(space + 1));
}

result<principal, auth_error> token_verifier::verify_authorization(std::string_view value,
                                                                   std::int64_t now_s) const {
  if (trim(value).empty()) return failure{auth_error::missing};
  const auto token = bearer_token(value);
  if (!token) return failure{auth_error::malformed};
  return verify_token(*token, now_s);
}

result<principal, auth_error> token_verifier::verify_token(std::string_view token, std::int64_t now_s) const {
  if (token.empty()) return failure{auth_error::missing};
  if (!cache_ || token.size() > jose::max_jwt_bytes) return verify_uncached(token, now_s);
  const std::string key = schemas::to_bytes(schemas::sha256(token));
  if (auto hit = cache_->find(key, now_s, config_.leeway_s)) return std::move(*hit);
  auto who = verify_uncached(token, now_s);
  if (who) cache_->put(key, *who, now_s, config_.leeway_s);
  return who;
}

result<principal, auth_error> token_verifier::verify_uncached(std::string_view token, std::int64_t now_s) const {
  auto jwt = jose::split_jwt(token);
  if (!jwt) return failure{auth_error::malformed};
  auto header = parse_header(jwt->header_json);
  if (!header) return failure{header.error()};

  bool candidate = false;
  bool verified = false;
  for (const auto& trusted : config_.keys) {
    if (header->kid ? trusted.kid != *header->kid : !key_fits(trusted.key, header->alg)) continue;
    candidate = true;
    if (jose::verify(trusted.key, header->alg, jwt->signing_input, jwt->signature)) {
      verified = true;
      break;
    }
  }
  if (!candidate) return failure{auth_error::unknown_key};
  if (!verified) return failure{auth_error::bad_signature};

  // Only now, with the issuer's signature checked, is the payload worth reading.
  simdjson::dom::element doc;
  if (thread_parser().parse(jwt->payload_json).get(doc) != simdjson::SUCCESS) return failure{auth_error::malformed};
  simdjson::dom::object claims;
  if (doc.get_object().get(claims) != simdjson::SUCCESS) return failure{auth_error::bad_claims};

  const double now = static_cast<double>(now_s);
  const double leeway = static_cast<double>(config_.leeway_s);
  auto exp = numeric_date(claims, "exp");
  if (!exp) return failure{exp.error()};
  if (!*exp) return failure{auth_error::bad_claims};
  if (now > **exp + leeway) return failure{auth_error::expired};
  auto nbf = numeric_date(claims, "nbf");
  if (!nbf) return failure{nbf.error()};
  if (*nbf && **nbf > now + leeway) return failure{auth_error::not_yet_valid};
  auto iat = numeric_date(claims, "iat");
  if (!iat) return failure{iat.error()};
  if (*iat && **iat > now + leeway) return failure{auth_error::issued_in_future};
  if (config_.max_lifetime_s > 0 && **exp - (*iat ? **iat : now) > static_cast<double>(config_.max_lifetime_s))
    return failure{auth_error::lifetime_too_long};

  if (config_.issuer) {
    std::string_view iss;
    if (claims["iss"].get_string().get(iss) != simdjson::SUCCESS || iss != *config_.issuer) {
      return failure{auth_error::wrong_issuer};
    }
  }
  if (config_.audience) {
    simdjson::dom::element aud;
    if (claims["aud"].get(aud) != simdjson::SUCCESS || !audience_matches(aud, *config_.audience)) {
      return failure{auth_error::wrong_audience};
    }
  }

  auto who = read_identity(claims, config_.gateway_subs);
  if (!who) return failure{who.error()};
  who->exp = clamp_to_int64(**exp);
  if (!who->cnf_jwk_json.empty()) {
    // A device key is checked once here, not on every PoP: only RSA 2048..4096 bits with
    // e = 65537, so no bogus PoP can cost more than a normal verification (contract §3a).
    auto key = jose::public_key::from_jwk(who->cnf_jwk_json);
    if (!key || !key->is_device_grade_rsa()) return failure{auth_error::bad_device_key};
    who->cnf_thumbprint = schemas::to_bytes(schemas::sha256(key->to_jwk_json()));
    who->cnf_key = std::move(*key);
  }
  return who;
}

}  // namespace transport
