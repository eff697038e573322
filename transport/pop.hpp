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
  lifetime_too_long,  // exp - iat > max lifetime
  missing_coverage,   // ehts lacks Authorization, uri, http-method, or body (when there is one)
  header_absent,      // ehts names a header the request does not have
  edts_mismatch,      // the recomputed digest differs: something signed was changed
  replayed,           // jti already seen within its lifetime
  cache_full,         // the replay cache is full of live entries (fail closed: 503)
};

// POP_MISSING, POP_EXPIRED, POP_REPLAYED, POP_INVALID, or SERVICE_UNAVAILABLE (cache_full).
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

// Remembers each accepted jti until its token can no longer be valid.
// Bounded: at capacity with only live entries, insert fails (the caller refuses the
// request rather than forget a jti that could then be replayed).
class replay_cache {
 public:
  explicit replay_cache(std::size_t capacity);
  enum class outcome { fresh, replayed, full };
  // Records `key` until `expires_at` (seconds) unless it is already there and live.
  outcome check_and_insert(std::string_view key, std::int64_t expires_at, std::int64_t now);
  std::size_t size() const;

 private:
  struct shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::int64_t> live;
    std::multimap<std::int64_t, std::string> by_expiry;
  };
  static constexpr std::size_t shard_count = 16;
  std::size_t per_shard_;
  std::unique_ptr<shard[]> shards_;
};

struct pop_options {
  std::int64_t leeway_s = 10;
  std::int64_t max_lifetime_s = 300;
  std::size_t replay_capacity = 1'000'000;
};

class pop_verifier {
 public:
  explicit pop_verifier(pop_options opts);

  // Verifies `pop_token` for `req` against the device key (the access token's cnf.jwk,
  // parsed; nullptr when the token has none). The checks run in the order of
  // pop_error's declaration; the first failure is returned.
  // On success the token's jti is remembered: the same token is refused next time.
  [[nodiscard]] schemas::status<pop_error> verify(std::string_view pop_token, const schemas::jose::public_key* device_key,
                                                  const pop_request& req, std::int64_t now_s);

  std::size_t remembered() const { return replay_.size(); }

 private:
  pop_options opts_;
  replay_cache replay_;
};

}  // namespace transport
