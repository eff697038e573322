#pragma once
// Requests per access token per second: a token bucket per key (the token's hash), so
// one misbehaving device cannot take the engine's capacity from the others.
// Bounded: at most max_keys buckets; when full, buckets idle long enough to be full
// again are dropped (they carry no information), and if none can be dropped the
// request is refused too (fail closed, counted). Thread-safe (sharded locks).
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace transport {

class rate_limiter {
 public:
  // rate: tokens per second (0 disables); burst: bucket size.
  rate_limiter(double rate, double burst, std::size_t max_keys);

  // True when a request for `key` may proceed at time `now_ms` (monotonic ms).
  bool allow(std::uint64_t key, std::int64_t now_ms);
  bool enabled() const noexcept { return rate_ > 0; }
  std::size_t size() const;

 private:
  struct bucket {
    double tokens;
    std::int64_t last_ms;
  };
  struct shard {
    mutable std::mutex mu;
    std::unordered_map<std::uint64_t, bucket> buckets;
  };
  static constexpr std::size_t shard_count = 16;
  void sweep(shard& s, std::int64_t now_ms);

  double rate_, burst_;
  std::size_t per_shard_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace transport
