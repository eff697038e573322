#pragma once
// The engine's two clocks. The reactor reads time only through a `clock`, so tests can
// drive both by hand.
//   now()      wall-clock ms since the epoch: event times and the timers' absolute
//              deadlines (contract §7), which must mean the same after a restart.
//   mono_ms()  a monotonic ms count (any origin): how long something has waited. Request
//              deadlines, admission windows and sweeps use it, so a wall-clock step (NTP,
//              an operator) neither times out waiting requests nor keeps dead ones alive.
#include <atomic>
#include <chrono>

#include "engine/types.hpp"

namespace engine {

class clock {
 public:
  virtual ~clock() = default;
  // Wall-clock time in ms since the epoch. Any thread.
  virtual epoch_ms now() const = 0;
  // Monotonic ms, never going back; only differences mean anything. Any thread.
  virtual epoch_ms mono_ms() const = 0;
};

class system_clock final : public clock {
 public:
  epoch_ms now() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  epoch_ms mono_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }
};

// Clocks that move only when told to. Any thread. Time passing moves both (advance, or
// set to a later time); step_wall moves the wall clock alone, as an NTP step does.
class manual_clock final : public clock {
 public:
  explicit manual_clock(epoch_ms start = 1'700'000'000'000) : now_(start) {}
  epoch_ms now() const override { return now_.load(); }
  epoch_ms mono_ms() const override { return mono_.load(); }
  // To a later wall time: that much time passed. To an earlier one: a step back.
  void set(epoch_ms t) {
    const epoch_ms was = now_.exchange(t);
    if (t > was) mono_.fetch_add(t - was);
  }
  void advance(epoch_ms d) {
    now_.fetch_add(d);
    mono_.fetch_add(d);
  }
  void step_wall(epoch_ms d) { now_.fetch_add(d); }

 private:
  std::atomic<epoch_ms> now_;
  std::atomic<epoch_ms> mono_{1'000'000};
};

}  // namespace engine
