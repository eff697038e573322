#include "engine/admission.hpp"

#include <algorithm>

namespace engine {
namespace {

// The answer rate is measured over windows of this length, and the best of the last
// `windows` counts.
constexpr epoch_ms window_ms = 100;
constexpr std::size_t windows = 5;

}  // namespace

admission::admission(std::size_t max_pending, epoch_ms max_queue_delay_ms, std::size_t floor, epoch_ms now_mono,
                     registry& m)
    : max_pending_(max_pending),
      max_queue_delay_ms_(max_queue_delay_ms),
      floor_(floor),
      limit_(max_queue_delay_ms > 0 ? std::min(max_pending, floor) : max_pending),
      window_start_(now_mono),
      window_answers_(windows, 0),
      shed_(m.get_counter("yna_requests_shed_total", "Requests refused with 503 for load (admission control, --max-pending)")),
      limit_gauge_(m.get_gauge("yna_admission_limit", "Requests the reactor admits at once now (admission control)")) {
  limit_gauge_.set(static_cast<std::int64_t>(limit_.load()));
}

void admission::update(epoch_ms now) {
  if (max_queue_delay_ms_ <= 0) return;
  if (now - window_start_ < window_ms) return;
  const epoch_ms elapsed = now - window_start_;
  // Answers per window_ms in the window that just closed.
  window_answers_[window_next_] =
      (answered_ - answered_at_window_start_) * window_ms / static_cast<std::uint64_t>(elapsed);
  window_next_ = (window_next_ + 1) % window_answers_.size();
  answered_at_window_start_ = answered_;
  window_start_ = now;
  const std::uint64_t best = *std::max_element(window_answers_.begin(), window_answers_.end());
  const std::uint64_t by_rate = best * static_cast<std::uint64_t>(max_queue_delay_ms_) / window_ms;
  const std::size_t limit =
      std::min<std::size_t>(max_pending_, std::max<std::size_t>(floor_, static_cast<std::size_t>(by_rate)));
  limit_.store(limit, std::memory_order_relaxed);
  limit_gauge_.set(static_cast<std::int64_t>(limit));
}

}  // namespace engine
