#pragma once
// What the reactor shows of itself: its Prometheus series (yna_events_total,
// yna_commit_*, yna_timer_*, yna_calls_in_memory, yna_reactor_loop_*, …) and the few
// figures other threads read (committed seq, active calls, armed timers, calls in
// memory). Written on the reactor thread only; the atomics are read from any thread.
#include <atomic>
#include <chrono>
#include <cstddef>

#include "engine/call_table.hpp"
#include "engine/metrics.hpp"
#include "engine/types.hpp"

namespace engine {

class reactor_probe {
 public:
  explicit reactor_probe(registry& m);

  // A batch of `events` handed to the store.
  void batch(std::size_t events) { batch_size_.observe(static_cast<double>(events)); }
  // One event durable, `since` after it was decided.
  void durable(std::chrono::steady_clock::duration since) {
    commit_seconds_.observe(std::chrono::duration<double>(since).count());
  }
  // A committed event applied to the table: the counters of what it was, then the
  // table's figures (settled before the request's reply goes out).
  void committed(const event& ev, const call_table& table);
  // The table changed otherwise (a batch answered, recovery).
  void table(const call_table& t);
  void timers(std::size_t armed);
  void pending(std::size_t outstanding) { pending_.set(static_cast<std::int64_t>(outstanding)); }
  // One loop iteration that did work took `took`.
  void loop(std::chrono::steady_clock::duration took);

  void write_failed() { write_failures_.inc(); }
  void timed_out() { timeouts_.inc(); }
  void superseded() { timers_superseded_.inc(); }
  void looked_up() { lookups_.inc(); }

  // Any thread (approximate).
  // Acquire: whatever the listener did for the events before it is seen too (push reads the
  // hub's registrations after it).
  event_seq committed_seq() const noexcept { return committed_seq_.load(std::memory_order_acquire); }
  std::size_t active_calls() const noexcept { return active_calls_.load(std::memory_order_relaxed); }
  std::size_t armed_timers() const noexcept { return armed_timers_.load(std::memory_order_relaxed); }
  std::size_t calls_in_memory() const noexcept { return calls_in_memory_.load(std::memory_order_relaxed); }

 private:
  std::atomic<event_seq> committed_seq_{0};
  std::atomic<std::size_t> active_calls_{0};
  std::atomic<std::size_t> armed_timers_{0};
  std::atomic<std::size_t> calls_in_memory_{0};

  histogram& batch_size_;
  histogram& commit_seconds_;
  counter& events_accepted_;
  counter& events_rejected_;
  counter& write_failures_;
  counter& timeouts_;
  counter* timer_expiries_[timer_kind_count];
  counter& timers_superseded_;
  counter& capped_calls_;    // 429 TOO_MANY_CALLS written
  counter& capped_ringing_;  // starts ended Busy by the ringing cap written
  counter& retired_;         // retire events written
  counter& lookups_;         // requests that read a call back from the log
  gauge& timers_gauge_;
  gauge& active_gauge_;
  gauge& live_in_memory_;   // yna_calls_in_memory{state="live"}
  gauge& ended_in_memory_;  // yna_calls_in_memory{state="ended"}
  gauge& pending_;
  histogram& loop_seconds_;  // each loop iteration that did work (yna_reactor_loop_seconds)
  gauge& loop_max_us_;
};

}  // namespace engine
