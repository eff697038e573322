#pragma once
// Proof-of-possession verification of `X-Authorization` (contract §2), T-Mobile's PoP
// format: an RS256 JWT signed with the device key whose public half is the access
// token's `cnf.jwk`, with claims
//   ehts  ';'-separated names of what is signed: "uri" (request target as sent),
//         "http-method", "body" (raw bytes), or a request header (case-insensitive)
//   edts  base64url(SHA-256(the values concatenated in ehts order, nothing between))
//   iat, exp, jti, v ("1")
// Thread-safe: verify() is called concurrently from the I/O threads; the replay cache
// is internally sharded and locked. No Beast/Asio include.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "schemas/jose.hpp"
#include "schemas/reason_code.hpp"
#include "schemas/result.hpp"

namespace transport {

enum class pop_error {
  missing,            // no X-Authorization on an endpoint that requires it
  malformed,          // not a compact JWS, header/claims not JSON, a claim missing or mistyped
  unsupported_alg,    // alg other than RS256
  no_cnf,             // the access token carries no usable cnf.jwk
  bad_signature,      // not signed by the cnf.jwk key
  expired,            // now > exp + leeway
  issued_in_future,   // iat > now + leeway
  exp_before_iat,     // exp < iat
  lifetime_too_long,  // exp - iat > max lifetime
  bad_ehts,           // ehts names an item twice, or more than max_ehts_names items
  missing_coverage,   // ehts lacks Authorization, uri, http-method, or body (when there is one)
  replayed,           // jti already seen for this device key within its lifetime
  header_absent,      // ehts names a header the request does not have
  edts_mismatch,      // the recomputed digest differs: something signed was changed
  key_share_full,     // this device key has its whole share of live jtis: 429, for it alone
  cache_full,         // the replay cache as a whole is full of live entries (fail closed: 503)
};

// POP_MISSING, POP_EXPIRED, POP_REPLAYED, POP_INVALID, TOO_MANY_REQUESTS (key_share_full)
// or SERVICE_UNAVAILABLE (cache_full).
schemas::reason_code pop_reason(pop_error e) noexcept;
// One sentence for ErrorInfo's systemMessage.
std::string_view describe(pop_error e) noexcept;

// What the PoP token may cover, from one HTTP request.
struct pop_request {
  std::string_view method;
  std::string_view target;  // path and query, as sent
  std::string_view body;
  // Value of a request header by name (case-insensitive), nullopt when absent.
  std::function<std::optional<std::string_view>(std::string_view)> header;
};

// Remembers each accepted jti, per device key (the cnf thumbprint), until its token can
// no longer be valid (contract §3a): one key's traffic can neither fill another key's
// space nor replay into it. Bounded twice: each key holds at most `per_key` live jtis
// (beyond: key_full, that key alone is refused) and the whole cache at most `capacity`
// (beyond: full; the caller refuses rather than forget a jti that could be replayed).
// Expired jtis are forgotten as soon as their shard is next touched (an expiry queue per
// shard: the cost is the number forgotten), and a key is forgotten with its last jti, so
// size() and keys() fall back to 0 when traffic stops (after forget_expired()).
// Thread-safe: sharded by key, one lock per shard.
class replay_cache {
 public:
  replay_cache(std::size_t capacity, std::size_t per_key);
  enum class outcome { fresh, replayed, key_full, full };
  // True when `jti` is live for `key` (a lookup: nothing is recorded).
  bool seen(std::string_view key, std::string_view jti, std::int64_t now);
  // Records `jti` for `key` until `expires_at` (seconds) unless it is already there.
  outcome check_and_insert(std::string_view key, std::string_view jti, std::int64_t expires_at, std::int64_t now);
  // Forgets every jti expired at `now` in every shard (and keys left with none).
  void forget_expired(std::int64_t now);
  std::size_t size() const;  // jtis remembered (live, or expired in a shard not touched since)
  std::size_t keys() const;  // device keys with a remembered jti

 private:
  struct shard {
    mutable std::mutex mu;
    // key -> its live jtis; a key is erased with its last jti.
    std::unordered_map<std::string, std::unordered_set<std::string>> keys;
    // Every jti of the shard by expiry, pointing at its key's and its own map keys
    // (node-based maps: the strings stay put while the entries live).
    std::multimap<std::int64_t, std::pair<const std::string*, const std::string*>> by_expiry;
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_for(std::string_view key);
  static void expire(shard& s, std::int64_t now);  // drops what expired before `now`
  std::size_t per_shard_, per_key_;
  std::unique_ptr<shard[]> shards_;
};

struct pop_options {
  std::int64_t leeway_s = 10;
  std::int64_t max_lifetime_s = 300;
  std::size_t replay_capacity = 1'000'000;  // live jtis in all (--pop-replay-capacity)
  std::size_t replay_per_key = 16384;       // live jtis per device key (--pop-jti-per-key)
};

// ehts names at most this many items, each once (contract §3a): the digest a PoP costs
// is bounded by the request's size.
inline constexpr std::size_t max_ehts_names = 16;

class pop_verifier {
 public:
  explicit pop_verifier(pop_options opts);

  // Verifies `pop_token` for `req` against the device key (the access token's cnf.jwk,
  // parsed; nullptr when the token has none) whose thumbprint is `key_id`. The checks
  // run in the order of pop_error's declaration; the first failure is returned. A jti
  // already seen for this key is refused before the digest is recomputed; a jti is
  // recorded only once everything verified, so the same token is refused next time.
  [[nodiscard]] schemas::status<pop_error> verify(std::string_view pop_token, const schemas::jose::public_key* device_key,
                                                  std::string_view key_id, const pop_request& req, std::int64_t now_s);

  std::size_t remembered() const { return replay_.size(); }
  // Forgets the jtis expired at `now_s` (before the gauges are read).
  void forget_expired(std::int64_t now_s) { replay_.forget_expired(now_s); }
  std::size_t keys_remembered() const { return replay_.keys(); }

 private:
  pop_options opts_;
  replay_cache replay_;
};

}  // namespace transport
