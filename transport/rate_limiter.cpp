#include "transport/rate_limiter.hpp"

#include <algorithm>

namespace transport {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_keys)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      per_shard_(std::max<std::size_t>(1, max_keys / shard_count)),
      shards_(new shard[shard_count]) {}

void rate_limiter::sweep(shard& s, std::int64_t now_ms) {
  // A bucket that has refilled completely is the same as no bucket.
  const double full_after_ms = burst_ / rate_ * 1000.0;
  for (auto it = s.buckets.begin(); it != s.buckets.end();) {
    if (static_cast<double>(now_ms - it->second.last_ms) >= full_after_ms)
      it = s.buckets.erase(it);
    else
      ++it;
  }
}

bool rate_limiter::allow(std::uint64_t key, std::int64_t now_ms) {
  if (rate_ <= 0) return true;
  shard& s = shards_[key % shard_count];
  std::lock_guard lk(s.mu);
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= per_shard_) {
      sweep(s, now_ms);
      if (s.buckets.size() >= per_shard_) return false;
    }
    it = s.buckets.emplace(key, bucket{burst_, now_ms}).first;
  }
  bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + static_cast<double>(now_ms - b.last_ms) * rate_ / 1000.0);
  b.last_ms = now_ms;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

std::size_t rate_limiter::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    n += shards_[i].buckets.size();
  }
  return n;
}

}  // namespace transport
