#pragma once
// Requests per second per key: a token bucket per key (a hash of the access token, or
// of the subject), so one misbehaving device or user cannot take the engine's capacity
// from the others (contract §3a).
// Bounded: at most max_keys buckets. A full table never refuses a newcomer: it forgets
// the least recently used bucket instead (one that has refilled is the same as none;
// an active one forgotten only gives its key a fresh burst). A bucket that has refilled
// is forgotten too, least recently used first (a couple on each allow(), all of them on
// forget_idle()), so size() falls back to 0 when traffic stops. Thread-safe (sharded
// locks).
#include <cstdint>
#include <list>
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
  // allow() without taking a token: would a request be allowed now?
  bool would_allow(std::uint64_t key, std::int64_t now_ms) const;
  bool enabled() const noexcept { return rate_ > 0; }
  // Forgets every bucket that has refilled by `now_ms` (before the gauges are read).
  void forget_idle(std::int64_t now_ms);
  std::size_t size() const;
  std::uint64_t evicted() const;  // buckets forgotten to make room (all time)

 private:
  struct bucket {
    double tokens;
    std::int64_t last_ms;
    std::list<std::uint64_t>::iterator lru;  // position in shard::lru (front: most recent)
  };
  struct shard {
    mutable std::mutex mu;
    std::unordered_map<std::uint64_t, bucket> buckets;
    std::list<std::uint64_t> lru;
    std::uint64_t evicted = 0;
  };
  static constexpr std::size_t shard_count = 16;
  double refilled(const bucket& b, std::int64_t now_ms) const;
  // Forgets up to `max` refilled buckets from the least recently used end of `s`.
  void trim(shard& s, std::int64_t now_ms, std::size_t max) const;

  double rate_, burst_;
  std::size_t per_shard_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace transport
