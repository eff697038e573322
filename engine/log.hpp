#pragma once
// Process log: one line per message on stderr, as text or JSON (--log-format).
// Thread-safe (one write per line). Never logs tokens or SDP bodies.
#include <fmt/format.h>

#include <string_view>

namespace engine::log {

enum class level { debug, info, warn, error };
enum class format { text, json };

void set_format(format f);
void set_level(level l);
void write(level l, std::string_view msg);

template <class... A>
void info(fmt::format_string<A...> f, A&&... a) { write(level::info, fmt::format(f, std::forward<A>(a)...)); }
template <class... A>
void warn(fmt::format_string<A...> f, A&&... a) { write(level::warn, fmt::format(f, std::forward<A>(a)...)); }
template <class... A>
void error(fmt::format_string<A...> f, A&&... a) { write(level::error, fmt::format(f, std::forward<A>(a)...)); }

}  // namespace engine::log
