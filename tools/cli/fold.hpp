#pragma once
// The log folded into call state with the engine's own fold (engine::call_table::apply,
// hence engine::apply): no second state machine. While folding it checks what a reader
// can check in one pass (seqs continue, each record's prev is the SHA-256 of the record
// before it) and, on reaching the seq of the log's persisted call state (contract §9: the
// state of every call in memory, written with each batch), compares the fold with it call
// by call. The fold keeps retired calls (marked retired) so that reports cover every call.
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/call_table.hpp"
#include "storage/event_log.hpp"
#include "tools/cli/common.hpp"
#include "tools/cli/history.hpp"

namespace cli {

// Where the log broke: the first bad event and why.
struct log_break {
  engine::event_seq seq = 0;
  std::string problem;
};

// The persisted call state against the fold at its seq.
struct state_check {
  bool present = false;   // the log has a persisted state (seq > 0)
  bool compared = false;  // the fold reached its seq (not when it stopped earlier)
  bool ok = true;
  engine::event_seq seq = 0;
  std::size_t calls = 0;      // calls in the persisted state
  std::size_t differing = 0;  // calls that differ, are missing or are extra
  std::string problem;        // the first difference, one line
  double seconds = 0;         // decoding and comparing it
};

struct fold_options {
  engine::event_seq until_seq = std::numeric_limits<engine::event_seq>::max();  // last seq folded
  std::optional<engine::epoch_ms> until_time;  // stop before the first event later than this
  bool check_chain = true;
  bool compare_state = true;
  bool stop_at_state = false;  // stop once the persisted state was compared (verify)
  progress* prog = nullptr;
  // Called after each event was folded (the table already holds its effect).
  std::function<void(const engine::event&, const engine::call_table&)> observe;
};

struct fold_result {
  engine::call_table table;
  std::uint64_t events = 0, rejected = 0, noops = 0;
  engine::event_seq last_seq = 0;        // last seq folded
  engine::event_seq log_last_seq = 0;    // the log's last seq when the fold started
  std::optional<log_break> broken;
  bool stopped = false;  // should_stop(): a signal, or stdout closed
  state_check state;
  double seconds = 0;  // the whole fold, the state comparison included
  // Events per second of the fold alone (the state comparison's time left out).
  double events_per_second() const;
};

// Folds the history (archives given, then the live log) from its first event. Stops at the
// first break (a gap, a broken link, a record that does not read): the table then holds
// everything before it.
fold_result fold_log(const history& hist, const fold_options& options);

// Compares the persisted state with `folded`, the fold up to its seq (kept retired calls
// included): every call not retired is persisted and equal through the call codec (so
// every field it stores); no retired or unknown call is persisted.
state_check compare_state(const engine::call_table& folded, const storage::persisted_state& persisted);

// Reads the events at `seqs` (ascending) with their raw records. Stops at the first
// seq that is absent or unreadable and returns it as a break.
std::optional<log_break> read_events(const storage::event_log& log, const std::vector<engine::event_seq>& seqs,
                                     const storage::event_log::scan_fn& fn);

}  // namespace cli
