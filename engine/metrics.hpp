#pragma once
// A small Prometheus-style metrics registry: counters, gauges and histograms identified
// by name and label set. Creating a metric takes a lock; updating one is a relaxed
// atomic, so hot paths look their metrics up once and keep the reference.
// Thread-safe. Metrics live as long as the registry.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace engine {

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class gauge {
 public:
  void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> v_{0};
};

class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double v) noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept;
  // Cumulative count of observations <= bound i (Prometheus "le").
  std::vector<std::uint64_t> cumulative() const;
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micro_{0};  // sum * 1e6, fixed point
};

// Bucket layouts used across the engine.
std::vector<double> latency_buckets_seconds();  // 50 µs .. 10 s
std::vector<double> size_buckets();              // 1 .. 4096

class registry {
 public:
  counter& get_counter(std::string_view name, std::string_view help, std::string_view labels = {});
  gauge& get_gauge(std::string_view name, std::string_view help, std::string_view labels = {});
  histogram& get_histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                           std::string_view labels = {});
  // Prometheus text exposition format 0.0.4. Runs the render hooks first.
  std::string render() const;
  // Called at the start of each render(), on the rendering thread: for gauges that are
  // cheaper read when scraped than kept up to date (e.g. the log's memory). Set them
  // up before serving; hooks must not call render().
  void on_render(std::function<void()> hook);

 private:
  struct family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<counter>> counters;
    std::map<std::string, std::unique_ptr<gauge>> gauges;
    std::map<std::string, std::unique_ptr<histogram>> histograms;
  };
  family& fam(std::string_view name, std::string_view help, std::string_view type);

  mutable std::mutex mu_;
  std::map<std::string, family, std::less<>> families_;
  std::vector<std::function<void()>> hooks_;  // under mu_ while added; called unlocked
};

}  // namespace engine
