#pragma once
// What every yna-tool command shares: exit codes, the global flags, the log opened as
// a reader, times as operators write them, progress on stderr. Namespace cli (the
// tool's own code; nothing outside tools/ includes it).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "engine/types.hpp"
#include "storage/event_log.hpp"

namespace cli {

// Exit codes scripts can rely on (tools/README.md).
enum exit_code : int {
  exit_ok = 0,
  exit_check_failed = 1,  // verify/replay found a break, a mismatch, or a record that does not read
  exit_usage = 2,         // bad flags or values
  exit_cannot_open = 3,   // the log (or a file the command needs) cannot be opened
  exit_not_found = 4,     // timeline: the log has no event of that call
  exit_interrupted = 130, // SIGINT or SIGTERM: stopped early, scratch files removed
};

// SIGINT and SIGTERM ask long scans to stop (so the reader closes and its scratch
// folder is removed); SIGPIPE is ignored, a closed stdout shows as a write error.
void install_signal_handlers();
// A signal asked to stop, or stdout can no longer be written: scans end early.
bool should_stop() noexcept;
bool interrupted() noexcept;

struct global_options {
  std::string data_dir = "./data";
  bool json = false;
  bool progress = false;  // progress on stderr even when it is not a terminal
  std::vector<std::string> archives;  // --archive: archive files read with the log (contract §9)
};

// One line to stderr, prefixed "yna-tool: ".
template <class... A>
void complain(fmt::format_string<A...> f, A&&... a) {
  std::fputs(("yna-tool: " + fmt::format(f, std::forward<A>(a)...) + "\n").c_str(), stderr);
}

// <data-dir>/log opened as a RocksDB secondary (read-only fallback), with a scratch
// folder for the secondary's own files that is removed when this goes away.
class log_reader {
 public:
  // nullptr after telling stderr why (the caller exits with exit_cannot_open).
  static std::unique_ptr<log_reader> open(const std::string& data_dir);
  ~log_reader();
  log_reader(const log_reader&) = delete;
  log_reader& operator=(const log_reader&) = delete;
  const storage::event_log& log() const { return *log_; }

 private:
  log_reader() = default;
  std::filesystem::path scratch_;
  std::unique_ptr<storage::event_log> log_;
};

// A whole file's bytes; nullopt when it cannot be read.
std::optional<std::string> read_file(const std::string& path);

// ---------------------------------------------------------------------------- time

// "2025-11-27T10:00:00.123Z" (UTC, milliseconds).
std::string format_time(engine::epoch_ms t);
engine::epoch_ms now_ms();
// An instant as operators write it: ISO 8601 ("2025-11-27", "2025-11-27T10:00",
// "2025-11-27T10:00:00.5Z", "…+02:00"; no zone = UTC; ' ' may replace 'T'),
// "@<epoch-ms>", "now", or a time before now: "-30s", "-15m", "-2h", "-1d".
std::optional<engine::epoch_ms> parse_time(std::string_view s, engine::epoch_ms now);

// The --since/--until pair of audit, cdr and export, each empty when not given.
struct time_window {
  std::optional<engine::epoch_ms> since, until;
};
// Parses both flags (as parse_time); complains and returns nullopt when one is not a time.
std::optional<time_window> parse_window(std::string_view since, std::string_view until);

// --until SEQ|TIME: a plain number is a sequence number, anything else a time.
struct log_position {
  std::optional<engine::event_seq> seq;
  std::optional<engine::epoch_ms> time;
};
std::optional<log_position> parse_position(std::string_view s, engine::epoch_ms now);

// "1 call", "2 calls".
std::string counted(std::uint64_t n, std::string_view noun);

// "12.345" seconds from milliseconds.
std::string format_seconds(engine::epoch_ms ms);

// ---------------------------------------------------------------------------- progress

// "\r<what> 1234/5678 events (21%)" on stderr, at most every 200 ms; nothing when
// disabled (stderr is not a terminal and --progress was not given), so tests and
// pipes stay clean.
class progress {
 public:
  progress(const global_options& g, std::string what, std::uint64_t total);
  ~progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;
  void update(std::uint64_t done);
  void finish();

 private:
  bool enabled_ = false;
  bool shown_ = false;
  std::string what_;
  std::uint64_t total_ = 0;
  std::int64_t last_ns_ = 0;
};

}  // namespace cli
