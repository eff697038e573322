#include "engine/log.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "schemas/json_writer.hpp"

namespace engine::log {

namespace {
std::atomic<format> g_format{format::text};
std::atomic<level> g_level{level::info};
constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_format(format f) { g_format = f; }
void set_level(level l) { g_level = l; }

std::string iso8601_utc(std::int64_t epoch_ms) {
  // Floor division: a time before 1970 still gives a millisecond in 0..999.
  std::int64_t secs = epoch_ms / 1000, ms = epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
}

std::string format_line(format f, level l, std::int64_t epoch_ms, std::string_view msg) {
  std::string line;
  if (f == format::json) {
    schemas::json_writer w(msg.size() + 64);
    w.begin_object().field("ts", epoch_ms).field("level", names[static_cast<int>(l)]);
    w.field("msg", msg).end_object();
    line = w.take();
  } else {
    line = fmt::format("{} {:5} {}", iso8601_utc(epoch_ms), names[static_cast<int>(l)], msg);
  }
  line.push_back('\n');
  return line;
}

void write(level l, std::string_view msg) {
  if (l < g_level.load()) return;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string line = format_line(g_format.load(), l, static_cast<std::int64_t>(ms), msg);
  std::fwrite(line.data(), 1, line.size(), stderr);  // one call: lines do not interleave
}

void name_this_thread(const char* name) noexcept { pthread_setname_np(pthread_self(), name); }

}  // namespace engine::log
