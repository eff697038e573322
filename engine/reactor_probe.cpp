#include "engine/reactor_probe.hpp"

#include <string>

namespace engine {

namespace {

std::string timer_label(timer_kind k) {
  std::string l = "timer=\"";
  l.append(to_string(k)).push_back('"');
  return l;
}

}  // namespace

reactor_probe::reactor_probe(registry& m)
    : batch_size_(m.get_histogram("yna_commit_batch_events", "Events per log write (group commit batch size)",
                                  size_buckets())),
      commit_seconds_(m.get_histogram("yna_commit_seconds", "Time from decision to durable, per event",
                                      latency_buckets_seconds())),
      events_accepted_(m.get_counter("yna_events_total", "Events written", "outcome=\"accepted\"")),
      events_rejected_(m.get_counter("yna_events_total", "Events written", "outcome=\"rejected\"")),
      write_failures_(m.get_counter("yna_log_write_failures_total", "Log writes that failed (requests answered 500/503)")),
      timeouts_(m.get_counter("yna_request_timeouts_total", "Requests answered 408 before being written")),
      timers_superseded_(m.get_counter("yna_timer_superseded_total",
                                       "Timer expiries dropped unwritten: a request decided first disarmed them")),
      capped_calls_(m.get_counter("yna_calls_capped_total", "/start requests refused or ended by a call cap",
                                  "cap=\"calls_per_number\"")),
      capped_ringing_(m.get_counter("yna_calls_capped_total", "/start requests refused or ended by a call cap",
                                    "cap=\"ringing_per_number\"")),
      retired_(m.get_counter("yna_calls_retired_total",
                             "Ended calls retired from memory after --call-retention (retire events written)")),
      lookups_(m.get_counter("yna_call_lookups_total",
                             "Requests on calls not in memory, read back from the log (retired calls, new /start keys)")),
      timers_gauge_(m.get_gauge("yna_timers_armed", "Call timers waiting in the deadline queue")),
      active_gauge_(m.get_gauge("yna_active_calls", "Calls not yet ended")),
      live_in_memory_(m.get_gauge("yna_calls_in_memory", "Calls held in memory (retired calls are not)", "state=\"live\"")),
      ended_in_memory_(m.get_gauge("yna_calls_in_memory", "Calls held in memory (retired calls are not)", "state=\"ended\"")),
      pending_(m.get_gauge("yna_reactor_pending", "Requests accepted by the reactor and not yet answered")),
      loop_seconds_(m.get_histogram("yna_reactor_loop_seconds",
                                    "Reactor loop iterations that did work: from waking up to going back to wait "
                                    "(every pause of the reactor is one)",
                                    latency_buckets_seconds())),
      loop_max_us_(m.get_gauge("yna_reactor_loop_max_microseconds", "Longest reactor loop iteration since start")) {
  for (int i = 0; i < timer_kind_count; ++i)
    timer_expiries_[i] = &m.get_counter("yna_timer_expiries_total", "Timer expiries written to the log",
                                        timer_label(static_cast<timer_kind>(i)));
}

void reactor_probe::committed(const event& ev, const call_table& t) {
  table(t);
  (ev.accepted() ? events_accepted_ : events_rejected_).inc();
  if (ev.act == action::timeout && ev.accepted() && ev.timer) timer_expiries_[static_cast<int>(*ev.timer)]->inc();
  if (ev.act == action::retire && ev.accepted()) retired_.inc();
  if (ev.act == action::start) {
    if (ev.rejected == reason_code::too_many_calls)
      capped_calls_.inc();
    else if (ev.accepted() && !ev.noop && ev.status_after && is_ended(*ev.status_after))
      capped_ringing_.inc();
  }
}

void reactor_probe::table(const call_table& t) {
  committed_seq_.store(t.last_seq(), std::memory_order_release);  // after what the listener was told before
  active_calls_.store(t.active(), std::memory_order_relaxed);
  active_gauge_.set(static_cast<std::int64_t>(t.active()));
  calls_in_memory_.store(t.size(), std::memory_order_relaxed);
  live_in_memory_.set(static_cast<std::int64_t>(t.active()));
  ended_in_memory_.set(static_cast<std::int64_t>(t.size() - t.active()));
}

void reactor_probe::timers(std::size_t armed) {
  armed_timers_.store(armed, std::memory_order_relaxed);
  timers_gauge_.set(static_cast<std::int64_t>(armed));
}

void reactor_probe::loop(std::chrono::steady_clock::duration took) {
  loop_seconds_.observe(std::chrono::duration<double>(took).count());
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
  if (us > loop_max_us_.value()) loop_max_us_.set(us);
}

}  // namespace engine
