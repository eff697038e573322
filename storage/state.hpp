#pragma once
// Start-up state (contract §9): the calls the log persists, plus the fold of whatever
// events came after them. Takes time in proportion to the calls in memory and the events
// the persisted state is behind by (none when only the engine wrote the log), never to
// the length of the history.
#include <cstdint>
#include <string>

#include "engine/call_table.hpp"
#include "schemas/result.hpp"
#include "storage/event_log.hpp"

namespace storage {

struct loaded_state {
  engine::call_table table;         // every call in memory at the log's last event
  std::size_t persisted_calls = 0;  // read from `calls`
  engine::event_seq persisted_seq = 0;
  std::uint64_t folded_events = 0;  // events after persisted_seq, folded on top
};

// Reads the persisted calls and folds the events after them. On a writer instance, the
// calls those events changed are then persisted (so the next start-up folds nothing);
// on a reader nothing is written. Fails naming the event or call that cannot be read,
// or when the fold does not reach the log's last event.
[[nodiscard]] schemas::result<loaded_state, std::string> load_state(event_log& log);

}  // namespace storage
