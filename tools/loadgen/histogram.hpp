#pragma once
// An HDR-style latency histogram: log-linear buckets over nanoseconds, 64 sub-buckets
// per power of two, so any recorded value is reported within 1/64 (1.6 %) of itself,
// from 1 ns to about 18 minutes, in 2,304 counters.
//
// Lock-free: record() is a handful of relaxed atomic adds, callable from any thread
// concurrently with the readers (which see an approximate snapshot while it runs).
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>

namespace loadgen {

class histogram {
 public:
  static constexpr int sub_bits = 6;
  static constexpr std::uint64_t sub_count = 1u << sub_bits;  // 64
  static constexpr int max_exponent = 40;                      // 2^40 ns ≈ 18 min
  static constexpr std::size_t bucket_count = (max_exponent - sub_bits + 2) * sub_count;

  void record(std::chrono::nanoseconds d) noexcept { record_ns(d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count())); }
  void record_ns(std::uint64_t v) noexcept {
    counts_[index_of(v)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
    auto m = max_.load(std::memory_order_relaxed);
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }

  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::uint64_t max_ns() const noexcept { return max_.load(std::memory_order_relaxed); }
  double mean_ns() const noexcept {
    const auto n = count();
    return n ? static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(n) : 0.0;
  }
  // The value at quantile q (0..1): the midpoint of the bucket holding it, never above
  // the maximum recorded. 0 when empty.
  std::uint64_t quantile_ns(double q) const noexcept {
    const auto n = count();
    if (n == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(n - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen >= rank) return std::min(midpoint(i), max_ns());
    }
    return max_ns();
  }
  // Adds every count of `o` (e.g. per-endpoint into a total).
  void merge(const histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i)
      counts_[i].fetch_add(o.counts_[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
    count_.fetch_add(o.count(), std::memory_order_relaxed);
    sum_.fetch_add(o.sum_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    auto m = max_.load(std::memory_order_relaxed);
    const auto v = o.max_ns();
    while (v > m && !max_.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }

  static constexpr std::size_t index_of(std::uint64_t v) noexcept {
    if (v < sub_count) return static_cast<std::size_t>(v);
    int e = 63 - std::countl_zero(v);  // v in [2^e, 2^(e+1)), e >= sub_bits
    if (e > max_exponent) return bucket_count - 1;
    const int shift = e - sub_bits;
    return static_cast<std::size_t>((shift + 1) * sub_count + ((v >> shift) & (sub_count - 1)));
  }
  // [lowest, highest] value of bucket i.
  static constexpr std::uint64_t lowest(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const auto shift = i / sub_count - 1;
    return (sub_count + i % sub_count) << shift;
  }
  static constexpr std::uint64_t highest(std::size_t i) noexcept {
    if (i < sub_count) return i;
    const auto shift = i / sub_count - 1;
    return lowest(i) + (std::uint64_t{1} << shift) - 1;
  }
  static constexpr std::uint64_t midpoint(std::size_t i) noexcept { return lowest(i) + (highest(i) - lowest(i)) / 2; }

 private:
  std::array<std::atomic<std::uint64_t>, bucket_count> counts_{};
  std::atomic<std::uint64_t> count_{0}, sum_{0}, max_{0};
};

}  // namespace loadgen
