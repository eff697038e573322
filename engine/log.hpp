#pragma once
// Process log: one line per message on stderr, as text or JSON (--log-format).
// Thread-safe (one write per line). Never logs tokens or SDP bodies.
//   text: 2026-12-06T10:29:44.789Z info  listening on http://127.0.0.1:8080 …
//   json: {"ts":1796552984789,"level":"info","msg":"listening on http://127.0.0.1:8080 …"}
#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace engine::log {

enum class level { debug, info, warn, error };
enum class format { text, json };

void set_format(format f);
void set_level(level l);
void write(level l, std::string_view msg);
// The line write() prints for a message at `epoch_ms` (UTC milliseconds), newline included.
std::string format_line(format f, level l, std::int64_t epoch_ms, std::string_view msg);
// 2026-12-06T10:29:44.789Z: ISO 8601, UTC, milliseconds.
std::string iso8601_utc(std::int64_t epoch_ms);

template <class... A>
void info(fmt::format_string<A...> f, A&&... a) { write(level::info, fmt::format(f, std::forward<A>(a)...)); }
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) { write(level::warn, fmt::format(f, std::forward<A>(a)...)); }
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) { write(level::error, fmt::format(f, std::forward<A>(a)...)); }

// Names the calling thread (at most 15 characters; shown by top -H, perf, gdb), so that a
// profile says which of the engine's threads spent the time.
void name_this_thread(const char* name) noexcept;

// At most `per_second` lines a second from one source, so that a flood (bad tokens, a
// full disk failing every write) cannot flood the log too. Thread-safe.
class limiter {
 public:
  explicit limiter(int per_second) : per_second_(per_second) {}
  // True when a line may be written now (`now_s`: any monotonic seconds).
  bool allow(std::int64_t now_s) noexcept {
    if (second_.exchange(now_s) != now_s) count_ = 0;
    return count_.fetch_add(1) < per_second_;
  }

 private:
  int per_second_;
  std::atomic<std::int64_t> second_{0};
  std::atomic<int> count_{0};
};

}  // namespace engine::log
