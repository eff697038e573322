#pragma once
// Admission control (overload): how many requests the reactor holds at once.
//
// Little's law: a queue drained at rate R holds R × D requests when each waits D. So the
// limit is the best recent answer rate times max_queue_delay: under a load the engine
// cannot take, the outstanding requests stay at what it answers within that delay, and
// the excess is refused at once (503) instead of waiting to time out. Under a load it can
// take the limit never binds: outstanding requests are then the rate times one commit
// (milliseconds), far below rate times the delay. Never below `floor`, never above
// max_pending; max_queue_delay 0 turns the rate part off (only max_pending applies).
//
// Counting (admit, admitting, answered) is any thread; update() is the reactor's.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/types.hpp"

namespace engine {

class admission {
 public:
  admission(std::size_t max_pending, epoch_ms max_queue_delay_ms, std::size_t floor, epoch_ms now_mono,
            registry& metrics);

  // Counts one more request outstanding when under the limit; false (counted as shed)
  // otherwise.
  bool admit() noexcept {
    if (outstanding_.fetch_add(1) < limit_.load(std::memory_order_relaxed)) return true;
    outstanding_.fetch_sub(1);
    shed_.inc();
    return false;
  }
  // Whether admit() would pass now, without counting a request in (false is counted as
  // shed): lets the transport refuse before it spends CPU on authentication.
  bool admitting() noexcept {
    if (outstanding_.load(std::memory_order_relaxed) < limit_.load(std::memory_order_relaxed)) return true;
    shed_.inc();
    return false;
  }
  // One outstanding request the limit does not apply to (the engine's own timer expiries).
  void add_own() noexcept { outstanding_.fetch_add(1, std::memory_order_relaxed); }
  // One request answered: no longer outstanding, and counted in the answer rate.
  void answered() noexcept {
    ++answered_;
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
  }
  std::size_t outstanding() const noexcept { return outstanding_.load(std::memory_order_relaxed); }
  std::size_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }

  // Reactor thread, every loop: closes the measuring window when it is over and sets the
  // limit from the best of the recent windows (one slow fsync does not shrink it).
  void update(epoch_ms now_mono);

 private:
  const std::size_t max_pending_;
  const epoch_ms max_queue_delay_ms_;
  const std::size_t floor_;
  std::atomic<std::size_t> outstanding_{0};
  std::atomic<std::size_t> limit_;
  // reactor thread only (answered_ is written there too: answers happen on it)
  std::uint64_t answered_ = 0;
  std::uint64_t answered_at_window_start_ = 0;
  epoch_ms window_start_;
  std::vector<std::uint64_t> window_answers_;
  std::size_t window_next_ = 0;
  counter& shed_;
  gauge& limit_gauge_;
};

}  // namespace engine
