#pragma once
// The one clock. The reactor reads time only through it, so tests can drive time by hand.
#include <atomic>
#include <chrono>

#include "engine/types.hpp"

namespace engine {

class clock {
 public:
  virtual ~clock() = default;
  // Wall-clock time in ms since the epoch. Any thread.
  virtual epoch_ms now() const = 0;
};

class system_clock final : public clock {
 public:
  epoch_ms now() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
};

// A clock that moves only when told to. Any thread.
class manual_clock final : public clock {
 public:
  explicit manual_clock(epoch_ms start = 1'700'000'000'000) : now_(start) {}
  epoch_ms now() const override { return now_.load(); }
  void set(epoch_ms t) { now_.store(t); }
  void advance(epoch_ms d) { now_.fetch_add(d); }

 private:
  std::atomic<epoch_ms> now_;
};

}  // namespace engine
