#pragma once
// timer_queue: the reactor's deadline queue (contract §7). Built from call state on
// recovery, kept in step with it as events are applied, and asked after every batch
// which timers are due. Entries are exact: a timer disarmed by an event leaves the
// queue, so the queue holds only timers that can still fire (plus retries after a
// failed write, which decide() drops if they are stale).
// Owned by the reactor thread; not thread-safe.
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "engine/call_table.hpp"
#include "engine/types.hpp"

namespace engine {

class timer_queue {
 public:
  struct entry {
    epoch_ms at;
    std::string call_id;
    timer_kind kind;
  };

  // Every armed timer of every call in `table`.
  void rebuild(const call_table& table);
  // A call's timers went from `before` to `after`.
  void update(const std::string& call_id, const deadlines& before, const deadlines& after);
  // Adds one entry (a retry after a failed expiry write).
  void schedule(epoch_ms at, std::string call_id, timer_kind kind);
  // Removes and returns the earliest entry due at `now`.
  std::optional<entry> pop_due(epoch_ms now);
  // Removes one entry (its expiry is being decided by another path).
  void erase(epoch_ms at, const std::string& call_id, timer_kind kind);

  std::optional<epoch_ms> next() const;
  std::size_t size() const noexcept { return q_.size(); }

 private:
  std::set<std::tuple<epoch_ms, std::string, timer_kind>> q_;
};

}  // namespace engine
