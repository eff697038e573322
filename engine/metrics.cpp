#include "engine/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace engine {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void histogram::observe(double v) noexcept {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0) sum_micro_.fetch_add(static_cast<std::uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

double histogram::sum() const noexcept { return static_cast<double>(sum_micro_.load()) / 1e6; }

std::vector<std::uint64_t> histogram::cumulative() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) out[i] = acc += buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<double> latency_buckets_seconds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}
std::vector<double> size_buckets() { return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}; }

registry::family& registry::fam(std::string_view name, std::string_view help, std::string_view type) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.emplace(std::string(name), family{std::string(help), std::string(type), {}, {}, {}}).first;
  return it->second;
}

counter& registry::get_counter(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lk(mu_);
  auto& f = fam(name, help, "counter");
  auto& p = f.counters[std::string(labels)];
  if (!p) p = std::make_unique<counter>();
  return *p;
}

gauge& registry::get_gauge(std::string_view name, std::string_view help, std::string_view labels) {
  std::lock_guard lk(mu_);
  auto& f = fam(name, help, "gauge");
  auto& p = f.gauges[std::string(labels)];
  if (!p) p = std::make_unique<gauge>();
  return *p;
}

histogram& registry::get_histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                                   std::string_view labels) {
  std::lock_guard lk(mu_);
  auto& f = fam(name, help, "histogram");
  auto& p = f.histograms[std::string(labels)];
  if (!p) p = std::make_unique<histogram>(std::move(bounds));
  return *p;
}

namespace {
std::string braces(std::string_view labels, std::string_view extra = {}) {
  if (labels.empty() && extra.empty()) return {};
  std::string s = "{";
  s.append(labels);
  if (!labels.empty() && !extra.empty()) s.push_back(',');
  s.append(extra);
  s.push_back('}');
  return s;
}
}  // namespace

void registry::on_render(std::function<void()> hook) {
  std::lock_guard lk(mu_);
  hooks_.push_back(std::move(hook));
}

std::string registry::render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lk(mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    for (const auto& [labels, c] : f.counters) out += fmt::format("{}{} {}\n", name, braces(labels), c->value());
    for (const auto& [labels, g] : f.gauges) out += fmt::format("{}{} {}\n", name, braces(labels), g->value());
    for (const auto& [labels, h] : f.histograms) {
      const auto cum = h->cumulative();
      for (std::size_t i = 0; i < h->bounds().size(); ++i)
        out += fmt::format("{}_bucket{} {}\n", name, braces(labels, fmt::format("le=\"{}\"", h->bounds()[i])), cum[i]);
      out += fmt::format("{}_bucket{} {}\n", name, braces(labels, "le=\"+Inf\""), cum.back());
      out += fmt::format("{}_sum{} {}\n", name, braces(labels), h->sum());
      out += fmt::format("{}_count{} {}\n", name, braces(labels), cum.back());
    }
  }
  return out;
}

}  // namespace engine
