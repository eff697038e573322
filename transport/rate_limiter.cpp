#include "transport/rate_limiter.hpp"

#include <algorithm>
#include <cassert>

namespace transport {

rate_limiter::rate_limiter(double rate, double burst, std::size_t max_keys)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      per_shard_(std::max<std::size_t>(1, max_keys / shard_count)),
      shards_(new shard[shard_count]) {}

double rate_limiter::refilled(const bucket& b, std::int64_t now_ms) const {
  return std::min(burst_, b.tokens + static_cast<double>(std::max<std::int64_t>(0, now_ms - b.last_ms)) * rate_ / 1000.0);
}

void rate_limiter::trim(shard& s, std::int64_t now_ms, std::size_t max) const {
  for (; max > 0 && !s.lru.empty(); --max) {
    auto it = s.buckets.find(s.lru.back());
    assert(it != s.buckets.end());  // the list and the map hold the same keys
    if (refilled(it->second, now_ms) < burst_) return;  // in use (and, mostly, so is everything more recent)
    s.buckets.erase(it);
    s.lru.pop_back();
  }
}

void rate_limiter::forget_idle(std::int64_t now_ms) {
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    trim(shards_[i], now_ms, shards_[i].lru.size());
  }
}

bool rate_limiter::allow(std::uint64_t key, std::int64_t now_ms) {
  if (rate_ <= 0) return true;
  shard& s = shards_[key % shard_count];
  std::lock_guard lk(s.mu);
  trim(s, now_ms, 2);  // two: idle buckets go faster than new ones come
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= per_shard_) {  // forget the least recently used
      s.buckets.erase(s.lru.back());
      s.lru.pop_back();
      ++s.evicted;
    }
    s.lru.push_front(key);
    it = s.buckets.emplace(key, bucket{burst_, now_ms, s.lru.begin()}).first;
  } else {
    s.lru.splice(s.lru.begin(), s.lru, it->second.lru);
  }
  bucket& b = it->second;
  b.tokens = refilled(b, now_ms);
  b.last_ms = std::max(b.last_ms, now_ms);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

bool rate_limiter::would_allow(std::uint64_t key, std::int64_t now_ms) const {
  if (rate_ <= 0) return true;
  const shard& s = shards_[key % shard_count];
  std::lock_guard lk(s.mu);
  auto it = s.buckets.find(key);
  return it == s.buckets.end() || refilled(it->second, now_ms) >= 1.0;
}

std::size_t rate_limiter::size() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    n += shards_[i].buckets.size();
  }
  return n;
}

std::uint64_t rate_limiter::evicted() const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < shard_count; ++i) {
    std::lock_guard lk(shards_[i].mu);
    n += shards_[i].evicted;
  }
  return n;
}

}  // namespace transport
