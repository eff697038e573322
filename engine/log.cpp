#include "engine/log.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
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

void write(level l, std::string_view msg) {
  if (l < g_level.load()) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::string line;
  if (g_format.load() == format::json) {
    schemas::json_writer w(msg.size() + 64);
    w.begin_object().field("ts", static_cast<std::int64_t>(ms)).field("level", names[static_cast<int>(l)]);
    w.field("msg", msg).end_object();
    line = w.take();
  } else {
    line = fmt::format("{}.{:03d} {:5} {}", ms / 1000, static_cast<int>(ms % 1000), names[static_cast<int>(l)], msg);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);  // one call: lines do not interleave
}

void name_this_thread(const char* name) noexcept { pthread_setname_np(pthread_self(), name); }

}  // namespace engine::log
