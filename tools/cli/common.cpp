#include "tools/cli/common.hpp"

#include <chrono>
#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>
#include <unistd.h>

namespace cli {

namespace fs = std::filesystem;

namespace {
volatile std::sig_atomic_t stop_signal = 0;
// The first signal asks to stop; a second one ends the process at once.
extern "C" void on_stop_signal(int sig) {
  stop_signal = 1;
  std::signal(sig, SIG_DFL);
}
}  // namespace

void install_signal_handlers() {
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool interrupted() noexcept { return stop_signal != 0; }
bool should_stop() noexcept { return stop_signal != 0 || std::ferror(stdout) != 0; }

std::unique_ptr<log_reader> log_reader::open(const std::string& data_dir) {
  const fs::path dir = fs::path(data_dir) / "log";
  std::string tmpl = (fs::temp_directory_path() / "yna-tool-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    complain("cannot make a scratch folder in {}: {}", fs::temp_directory_path().string(), std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<log_reader> r(new log_reader);
  r->scratch_ = tmpl;
  auto log = storage::event_log::open_reader(dir, r->scratch_);
  if (!log) {
    complain("cannot open the log in {}: {} ({})", dir.string(), storage::to_string(log.error().code),
             log.error().detail);
    return nullptr;
  }
  r->log_ = std::move(*log);
  return r;
}

log_reader::~log_reader() {
  log_.reset();  // close RocksDB before removing its scratch files
  std::error_code ec;
  if (!scratch_.empty()) fs::remove_all(scratch_, ec);
}

// ---------------------------------------------------------------------------- time

namespace {

using namespace std::chrono;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<engine::epoch_ms> parse_iso(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t p = 10;
  std::int64_t ms = 0;
  if (p < s.size() && (s[p] == 'T' || s[p] == ' ')) {
    if (!digits(s, p + 1, 2, h) || p + 3 >= s.size() || s[p + 3] != ':' || !digits(s, p + 4, 2, mi)) return std::nullopt;
    p += 6;
    if (p < s.size() && s[p] == ':') {
      if (!digits(s, p + 1, 2, sec)) return std::nullopt;
      p += 3;
      if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
        std::size_t q = p + 1;
        int scale = 100;
        for (; q < s.size() && s[q] >= '0' && s[q] <= '9'; ++q, scale /= 10) ms += (s[q] - '0') * scale;
        if (q == p + 1) return std::nullopt;
        p = q;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  }
  std::int64_t offset_min = 0;
  if (p < s.size()) {
    if (s[p] == 'Z' && p + 1 == s.size()) {
      p = s.size();
    } else if ((s[p] == '+' || s[p] == '-') && s.size() == p + 6 && s[p + 3] == ':') {
      int oh, om;
      if (!digits(s, p + 1, 2, oh) || !digits(s, p + 4, 2, om)) return std::nullopt;
      offset_min = (s[p] == '+' ? 1 : -1) * (oh * 60 + om);
    } else {
      return std::nullopt;
    }
  }
  const std::int64_t days = sys_days{ymd}.time_since_epoch().count();
  return ((days * 24 + h) * 60 + mi - offset_min) * 60'000 + sec * 1000LL + ms;
}

}  // namespace

std::string format_time(engine::epoch_ms t) {
  const sys_time<milliseconds> tp{milliseconds{t}};
  const auto day_point = floor<days>(tp);
  const year_month_day ymd{day_point};
  const hh_mm_ss hms{tp - day_point};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

engine::epoch_ms now_ms() {
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<time_window> parse_window(std::string_view since, std::string_view until) {
  const engine::epoch_ms now = now_ms();
  time_window w;
  for (auto [flag, text, out] : {std::tuple{"--since", since, &w.since}, std::tuple{"--until", until, &w.until}}) {
    if (text.empty()) continue;
    if (!(*out = parse_time(text, now))) {
      complain("{} {}: not a time (ISO 8601, @epoch-ms, -15m)", flag, text);
      return std::nullopt;
    }
  }
  return w;
}

std::optional<engine::epoch_ms> parse_time(std::string_view s, engine::epoch_ms now) {
  if (s == "now") return now;
  if (s.size() > 1 && s[0] == '@') return parse_int(s.substr(1));
  if (s.size() > 2 && s[0] == '-') {
    const char unit = s.back();
    const std::int64_t per = unit == 's' ? 1000 : unit == 'm' ? 60'000 : unit == 'h' ? 3'600'000 : unit == 'd' ? 86'400'000 : 0;
    auto n = parse_int(s.substr(1, s.size() - 2));
    if (per == 0 || !n) return std::nullopt;
    return now - *n * per;
  }
  return parse_iso(s);
}

std::optional<log_position> parse_position(std::string_view s, engine::epoch_ms now) {
  if (auto n = parse_int(s)) return log_position{static_cast<engine::event_seq>(*n), std::nullopt};
  if (auto t = parse_time(s, now)) return log_position{std::nullopt, *t};
  return std::nullopt;
}

std::string counted(std::uint64_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

std::string format_seconds(engine::epoch_ms ms) {
  if (ms < 0) ms = 0;
  return fmt::format("{}.{:03}", ms / 1000, ms % 1000);
}

// ---------------------------------------------------------------------------- progress

progress::progress(const global_options& g, std::string what, std::uint64_t total)
    : enabled_(g.progress || ::isatty(STDERR_FILENO)), what_(std::move(what)), total_(total) {}

progress::~progress() { finish(); }

void progress::update(std::uint64_t done) {
  if (!enabled_) return;
  const std::int64_t ns = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
  if (shown_ && ns - last_ns_ < 200'000'000) return;
  last_ns_ = ns;
  shown_ = true;
  if (total_ > 0)
    std::fprintf(stderr, "\r%s %llu/%llu events (%llu%%)", what_.c_str(), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total_),
                 static_cast<unsigned long long>(done * 100 / (total_ ? total_ : 1)));
  else
    std::fprintf(stderr, "\r%s %llu events", what_.c_str(), static_cast<unsigned long long>(done));
  std::fflush(stderr);
}

void progress::finish() {
  if (!shown_) return;
  shown_ = false;
  std::fputs("\n", stderr);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace cli
