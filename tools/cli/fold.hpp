#pragma once
// The log folded into call state with the engine's own fold (engine::call_table::apply,
// hence engine::apply): no second state machine. While folding it checks what a reader
// can check in one pass (seqs continue, each record's prev is the SHA-256 of the record
// before it) and, on reaching the newest snapshot's seq, compares the folded table with
// that snapshot call by call.
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

namespace cli {

// Where the log broke: the first bad event and why.
struct log_break {
  engine::event_seq seq = 0;
  std::string problem;
};

// The newest snapshot against the fold at the snapshot's seq.
struct snapshot_check {
  bool present = false;   // the log has a snapshot
  bool compared = false;  // the fold reached its seq (not when it stopped earlier)
  bool ok = true;
  engine::event_seq seq = 0;
  std::size_t calls = 0;      // calls in the snapshot
  std::size_t differing = 0;  // calls that differ, are missing or are extra
  std::string problem;        // the first difference, one line
  double seconds = 0;         // decoding and comparing it
};

struct fold_options {
  engine::event_seq until_seq = std::numeric_limits<engine::event_seq>::max();  // last seq folded
  std::optional<engine::epoch_ms> until_time;  // stop before the first event later than this
  bool check_chain = true;
  bool compare_snapshot = true;
  bool stop_at_snapshot = false;  // stop once the snapshot was compared (verify)
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
  snapshot_check snapshot;
  double seconds = 0;  // the whole fold, snapshot comparison included
  // Events per second of the fold alone (the snapshot comparison's time left out).
  double events_per_second() const;
};

// Folds the log from seq 1. Stops at the first break (a gap, a broken link, a record
// that does not read): the table then holds everything before it.
fold_result fold_log(const storage::event_log& log, const fold_options& options);

// Compares the snapshot `bytes` (taken at `seq`) with `folded`, the fold up to that seq:
// the same calls, each equal through the snapshot codec (so every field it stores).
snapshot_check compare_snapshot(const engine::call_table& folded, engine::event_seq seq, std::string_view bytes);

// Reads the events at `seqs` (ascending) with their raw records. Stops at the first
// seq that is absent or unreadable and returns it as a break.
std::optional<log_break> read_events(const storage::event_log& log, const std::vector<engine::event_seq>& seqs,
                                     const storage::event_log::scan_fn& fn);

}  // namespace cli
