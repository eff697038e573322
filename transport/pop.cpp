#include "transport/pop.hpp"

#include <simdjson.h>

#include <cassert>
#include <cmath>
#include <limits>

#include "schemas/base64url.hpp"
#include "schemas/digest.hpp"
#include "schemas/jose.hpp"
#include "transport/detail/ascii.hpp"

namespace transport {

namespace jose = schemas::jose;
using detail::iequals;
using schemas::failure;
using rc = schemas::reason_code;

rc pop_reason(pop_error e) noexcept {
  switch (e) {
    case pop_error::missing: return rc::pop_missing;
    case pop_error::expired: return rc::pop_expired;
    case pop_error::replayed: return rc::pop_replayed;
    case pop_error::key_share_full: return rc::too_many_requests;
    case pop_error::cache_full: return rc::service_unavailable;
    default: return rc::pop_invalid;
  }
}

std::string_view describe(pop_error e) noexcept {
  switch (e) {
    case pop_error::missing: return "this endpoint needs a PoP token in X-Authorization";
    case pop_error::malformed: return "the PoP token is not a well-formed JWT with ehts, edts, iat, exp and jti";
    case pop_error::unsupported_alg: return "the PoP token must be signed with RS256";
    case pop_error::no_cnf: return "the access token has no cnf.jwk RSA key to verify the PoP token against";
    case pop_error::bad_signature: return "the PoP token's signature does not verify with the access token's cnf.jwk";
    case pop_error::expired: return "the PoP token has expired";
    case pop_error::issued_in_future: return "the PoP token's iat is in the future";
    case pop_error::exp_before_iat: return "the PoP token's exp is before its iat";
    case pop_error::lifetime_too_long: return "the PoP token lives longer than 300 seconds (exp - iat)";
    case pop_error::bad_ehts: return "the PoP token's ehts must name each item once, at most 16 items";
    case pop_error::missing_coverage:
      return "the PoP token's ehts must cover Authorization, uri, http-method and (with a body) body";
    case pop_error::header_absent: return "the PoP token's ehts names a header the request does not carry";
    case pop_error::edts_mismatch: return "the PoP token's edts does not match the request (uri, method, body or headers changed)";
    case pop_error::replayed: return "this PoP token (jti) was already used";
    case pop_error::key_share_full:
      return "this device key has too many PoP tokens in flight (--pop-jti-per-key); use shorter PoP lifetimes";
    case pop_error::cache_full: return "too many PoP tokens in flight; retry shortly";
  }
  return "PoP token invalid";
}

// --- replay cache ---------------------------------------------------------------

replay_cache::replay_cache(std::size_t capacity, std::size_t per_key)
    : per_shard_(std::max<std::size_t>(1, capacity / shard_count)),
      per_key_(per_key == 0 ? std::numeric_limits<std::size_t>::max() : per_key),
      shards_(new shard[shard_count]) {}

replay_cache::shard& replay_cache::shard_for(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % shard_count];
}

// Forgets what can no longer be replayed (its token has expired), and keys left empty.
void replay_cache::expire(shard& s, std::int64_t now) {
  while (!s.by_expiry.empty() && s.by_expiry.begin()->first < now) {
    const auto [key, jti] = s.by_expiry.begin()->second;
    auto k = s.keys.find(*key);
    assert(k != s.keys.end() && k->second.count(*jti) == 1);  // both indexes hold every jti
    s.by_expiry.erase(s.by_expiry.begin());
    k->second.erase(k->second.find(*jti));  // `jti` dangles from here
    if (k->second.empty()) s.keys.erase(k);
  }
}

void replay_cache::forget_expired(std::int64_t now) {
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    expire(shards_[i], now);
  }
}

bool replay_cache::seen(std::string_view key, std::string_view jti, std::int64_t now) {
  shard& s = shard_for(key);
  std::lock_guard lk(s.mu);
  expire(s, now);
  auto k = s.keys.find(std::string(key));
  return k != s.keys.end() && k->second.count(std::string(jti)) > 0;
}

replay_cache::outcome replay_cache::check_and_insert(std::string_view key, std::string_view jti,
                                                     std::int64_t expires_at, std::int64_t now) {
  shard& s = shard_for(key);
  std::lock_guard lk(s.mu);
  expire(s, now);
  auto k = s.keys.find(std::string(key));
  if (k != s.keys.end()) {
    if (k->second.count(std::string(jti))) return outcome::replayed;
    if (k->second.size() >= per_key_) return outcome::key_full;
  }
  if (s.by_expiry.size() >= per_shard_) return outcome::full;
  if (k == s.keys.end()) k = s.keys.emplace(std::string(key), std::unordered_set<std::string>{}).first;
  auto j = k->second.emplace(jti).first;
  s.by_expiry.emplace(expires_at, std::pair{&k->first, &*j});
  return outcome::fresh;
}

std::size_t replay_cache::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    n += shards_[i].by_expiry.size();
  }
  return n;
}

std::size_t replay_cache::keys() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    n += shards_[i].keys.size();
  }
  return n;
}

// --- verifier --------------------------------------------------------------------

namespace {

simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser p;
  return p;
}


bool read_seconds(simdjson::dom::object o, std::string_view k, std::int64_t& out) {
  simdjson::dom::element el;
  if (o.at_key(k).get(el)) return false;
  if (el.is_int64()) {
    const std::int64_t v = el.get_int64().value_unsafe();
    if (v > 1'000'000'000'000'000 || v < -1'000'000'000'000'000) return false;  // keeps exp - iat, exp + leeway exact
    out = v;
    return true;
  }
  if (el.is_double()) {
    const double d = el.get_double().value_unsafe();
    if (!std::isfinite(d) || std::fabs(d) > 1e15) return false;
    out = static_cast<std::int64_t>(d);
    return true;
  }
  return false;
}

struct claims {
  std::string ehts, edts, jti;
  std::int64_t iat = 0, exp = 0;
};

}  // namespace

pop_verifier::pop_verifier(pop_options opts) : opts_(opts), replay_(opts.replay_capacity, opts.replay_per_key) {}

schemas::status<pop_error> pop_verifier::verify(std::string_view pop_token, const jose::public_key* key,
                                                std::string_view key_id, const pop_request& req, std::int64_t now) {
  if (pop_token.empty()) return failure{pop_error::missing};
  auto jwt = jose::split_jwt(pop_token);
  if (!jwt) return failure{pop_error::malformed};

  {  // header: alg must be RS256
    simdjson::dom::object h;
    std::string_view alg;
    if (thread_parser().parse(jwt->header_json).get_object().get(h) || h.at_key("alg").get_string().get(alg))
      return failure{pop_error::malformed};
    if (alg != "RS256") return failure{pop_error::unsupported_alg};
  }
  if (!key || !key->is_rsa()) return failure{pop_error::no_cnf};
  if (!jose::verify(*key, jose::alg::rs256, jwt->signing_input, jwt->signature))
    return failure{pop_error::bad_signature};

  claims c;
  {
    simdjson::dom::object o;
    if (thread_parser().parse(jwt->payload_json).get_object().get(o)) return failure{pop_error::malformed};
    std::string_view ehts, edts, jti;
    if (o.at_key("ehts").get_string().get(ehts) || o.at_key("edts").get_string().get(edts) ||
        o.at_key("jti").get_string().get(jti) || !read_seconds(o, "iat", c.iat) || !read_seconds(o, "exp", c.exp))
      return failure{pop_error::malformed};
    std::string_view v;
    if (o.at_key("v").get(v) == simdjson::SUCCESS && v != "1") return failure{pop_error::malformed};
    if (jti.empty() || jti.size() > 256 || ehts.empty() || ehts.size() > 4096) return failure{pop_error::malformed};
    c.ehts = ehts;
    c.edts = edts;
    c.jti = jti;
  }
  if (now > c.exp + opts_.leeway_s) return failure{pop_error::expired};
  if (c.iat > now + opts_.leeway_s) return failure{pop_error::issued_in_future};
  if (c.exp < c.iat) return failure{pop_error::exp_before_iat};
  if (c.exp - c.iat > opts_.max_lifetime_s) return failure{pop_error::lifetime_too_long};

  // The names in ehts: each at most once, at most max_ehts_names, and the coverage the
  // contract requires. Nothing is hashed yet.
  std::vector<std::string_view> names;
  bool has_auth = false, has_uri = false, has_method = false, has_body = false;
  for (std::string_view rest = c.ehts; !rest.empty();) {
    const auto semi = rest.find(';');
    const std::string_view name = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    if (name.empty()) return failure{pop_error::malformed};
    if (names.size() == max_ehts_names) return failure{pop_error::bad_ehts};
    for (auto seen : names)
      if (iequals(seen, name)) return failure{pop_error::bad_ehts};
    names.push_back(name);
    has_uri |= iequals(name, "uri");
    has_method |= iequals(name, "http-method");
    has_body |= iequals(name, "body");
    has_auth |= iequals(name, "authorization");
  }
  if (!has_auth || !has_uri || !has_method || (!req.body.empty() && !has_body))
    return failure{pop_error::missing_coverage};
  // A replay is refused before the digest (the request's size) is paid for again.
  if (replay_.seen(key_id, c.jti, now)) return failure{pop_error::replayed};

  schemas::sha256_hasher hasher;
  for (auto name : names) {
    if (iequals(name, "uri")) {
      hasher.update(req.target);
    } else if (iequals(name, "http-method")) {
      hasher.update(req.method);
    } else if (iequals(name, "body")) {
      hasher.update(req.body);
    } else {
      auto v = req.header ? req.header(name) : std::nullopt;
      if (!v) return failure{pop_error::header_absent};
      hasher.update(*v);
    }
  }
  if (schemas::base64url_encode(schemas::to_bytes(hasher.finish())) != c.edts)
    return failure{pop_error::edts_mismatch};

  switch (replay_.check_and_insert(key_id, c.jti, c.exp + opts_.leeway_s, now)) {
    case replay_cache::outcome::fresh: return {};
    case replay_cache::outcome::replayed: return failure{pop_error::replayed};
    case replay_cache::outcome::key_full: return failure{pop_error::key_share_full};
    case replay_cache::outcome::full: return failure{pop_error::cache_full};
  }
  return {};
}

}  // namespace transport
