// yna-log-gen: writes a large, valid event log for the replay and recovery benchmarks
// (tools/bench/replay-bench.sh). Every event is decided by engine::decide against the
// fold so far and appended through storage::event_log, exactly as the reactor does:
// the chain, the indexes, the records and the persisted call states (contract §9) are
// the engine's own. Calls go start, ringing, connected, end, retire (5 events each, with
// --call-retention 0 as the retention), `--window` of them interleaved; the last
// `--live-calls` stop after connected and stay live (no timers armed: the generator
// runs with no max call duration, so they do not expire when the engine starts).
// Not a test tool: --unsafe-no-fsync speed, a manual clock, fixed device tokens.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdio>
#include <future>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "storage/event_log.hpp"

namespace {

// A typical audio offer (Opus, G.711, telephone-event; about 300 bytes).
std::string offer_sdp(std::uint64_t id, std::string_view who) {
  return fmt::format(
      "v=0\r\no=- {} 1 IN IP4 198.51.100.{}\r\ns={}\r\nc=IN IP4 198.51.100.{}\r\nt=0 0\r\n"
      "m=audio {} RTP/AVP 111 0 8 101\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
      "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
      id, id % 250, who, id % 250, 10000 + 2 * (id % 20000));
}

std::string hex_id(std::uint64_t n, std::uint64_t salt) {
  std::uint64_t a = n * 0x9E3779B97F4A7C15ULL ^ salt, b = (n + salt) * 0xC2B2AE3D27D4EB4FULL;
  return fmt::format("{:016X}{:016X}", a, b);
}

std::string guid(std::uint64_t n) {
  const std::string h = hex_id(n, 0x5bd1e995);
  std::string g = h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-8" + h.substr(17, 3) + "-" +
                  h.substr(20, 12);
  for (char& c : g) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return g;
}

struct live_call {
  std::uint64_t n = 0;
  std::string id, from, to;
  int step = 0;  // next: 0 start, 1 ringing, 2 connected, 3 end, 4 retire
  bool stays_live = false;
};

constexpr int steps_per_call = 5;

engine::command command_for(const live_call& c, std::uint64_t txn) {
  engine::command cmd;
  const bool mo = c.step == 0 || c.step == 3;
  const std::string& number = mo ? c.from : c.to;
  cmd.who = engine::actor{"dev-" + number, mo ? "phone-a" : "phone-b", {number}, false, ""};
  cmd.txn_id = guid(txn);
  static constexpr engine::action acts[] = {engine::action::start, engine::action::ringing, engine::action::connected,
                                            engine::action::end, engine::action::retire};
  cmd.act = acts[c.step];
  if (cmd.act == engine::action::retire) {
    cmd.call_id = c.id;
    cmd.timer = engine::timer_kind::retire;
    cmd.who = {};
    return cmd;
  }
  if (c.step == 0) {
    cmd.new_call_id = c.id;
    cmd.from = c.from;
    cmd.to = c.to;
    cmd.sdp = offer_sdp(c.n, "a");
    cmd.client_correlator = "gen-" + c.id;  // as clients send (and yna-loadgen): the by_start index fills
  } else {
    cmd.call_id = c.id;
  }
  if (c.step == 2) cmd.sdp = offer_sdp(c.n, "b");
  cmd.method = c.step == 3 ? "DELETE" : "POST";
  static constexpr const char* words[] = {"start", "ringing", "connected", "end", "retire"};
  cmd.path = c.step == 0 ? "/start" : fmt::format("/{}/{}", words[c.step], c.id);
  return cmd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"yna-log-gen: a large valid event log for benchmarks"};
  std::string data_dir;
  std::uint64_t calls = 250000, live_calls = 0, batch_size = 1000, window = 64;
  bool no_compression = false, no_state = false;
  app.add_option("--data-dir", data_dir, "The engine data folder to create (the log goes to DIR/log)")->required();
  app.add_option("--calls", calls, "Calls to write (5 events each; a live call 3)")->capture_default_str();
  app.add_option("--live-calls", live_calls, "Of those, the last N stay live (answered, not ended)")->capture_default_str();
  app.add_option("--window", window, "Calls in progress at once (their events interleave)")->capture_default_str();
  app.add_option("--batch", batch_size, "Events per append (one WriteBatch)")->capture_default_str();
  app.add_flag("--no-state", no_state,
               "Write events only, no persisted call states: the engine then folds the whole log at start-up");
  app.add_flag("--no-compression", no_compression, "Write SST files uncompressed (bytes-per-event measurements)");
  CLI11_PARSE(app, argc, argv);

  storage::log_options o;
  o.dir = std::filesystem::path(data_dir) / "log";
  o.sync = false;
  o.compress = !no_compression;
  auto opened = storage::event_log::open(o);
  if (!opened) {
    std::fprintf(stderr, "yna-log-gen: cannot open %s: %s\n", o.dir.c_str(), opened.error().detail.c_str());
    return 3;
  }
  auto& log = **opened;
  if (log.last_seq() != 0) {
    std::fprintf(stderr, "yna-log-gen: %s already holds a log\n", o.dir.c_str());
    return 2;
  }

  const auto t0 = std::chrono::steady_clock::now();
  engine::call_table table;
  // The engine's defaults, but no max call duration (the live calls must not expire when
  // an engine opens the log later) and retirement right after the end.
  engine::timer_settings timers;
  timers.max_duration_ms = 0;
  timers.retention_ms = 0;
  engine::epoch_ms now = 1'764'000'000'000;  // 2025-11-24, a millisecond per event
  engine::event_seq seq = 0;
  std::uint64_t started = 0, txn = 0, left_live = 0;
  std::vector<live_call> live;
  std::vector<engine::event> batch;
  std::vector<std::string> changed;  // calls the batch changed (their state is written with it)
  auto flush = [&] {
    std::vector<engine::call_change> changes;
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (const auto& id : changed) {
      const engine::call_state* c = table.find(id);
      changes.push_back({id, c ? std::optional<engine::call_state>(*c) : std::nullopt});
    }
    std::promise<schemas::status<engine::store_error>> p;
    auto f = p.get_future();
    log.append_async(batch, no_state ? nullptr : &changes,
                     [&](schemas::status<engine::store_error> st) { p.set_value(st); });
    if (auto st = f.get(); !st) {
      std::fprintf(stderr, "yna-log-gen: append failed: %s\n", std::string(engine::to_string(st.error())).c_str());
      std::exit(1);
    }
    batch.clear();
    changed.clear();
  };
  auto last_progress = t0;
  while (started < calls || !live.empty()) {
    while (live.size() < window && started < calls) {
      const std::uint64_t n = started++;
      live.push_back({n, hex_id(n, 0x1234567), fmt::format("1425{:07}", n % 50000),
                      fmt::format("1206{:07}", (n * 7919) % 50000), 0, n + live_calls >= calls});
    }
    for (std::size_t i = 0; i < live.size();) {
      live_call& c = live[i];
      const engine::command cmd = command_for(c, ++txn);
      const engine::call_state* state = c.step == 0 ? nullptr : table.find(c.id);
      engine::event e = engine::decide(state, cmd, ++now, timers);
      if (!e.accepted()) {
        std::fprintf(stderr, "yna-log-gen: call %s step %d rejected: %s\n", c.id.c_str(), c.step,
                     std::string(schemas::to_string(e.rejected)).c_str());
        return 1;
      }
      e.seq = ++seq;
      table.apply(e);
      changed.push_back(e.call_id);
      batch.push_back(std::move(e));
      if (batch.size() >= batch_size) {
        flush();
        const auto t = std::chrono::steady_clock::now();
        if (t - last_progress > std::chrono::seconds(2)) {
          last_progress = t;
          std::fprintf(stderr, "yna-log-gen: %llu events, %llu of %llu calls started\n",
                       static_cast<unsigned long long>(seq), static_cast<unsigned long long>(started),
                       static_cast<unsigned long long>(calls));
        }
      }
      ++c.step;
      if (c.stays_live && c.step == 3) {
        ++left_live;
        c = std::move(live.back());
        live.pop_back();
      } else if (c.step == steps_per_call) {
        c = std::move(live.back());
        live.pop_back();
      } else {
        ++i;
      }
    }
  }
  if (!batch.empty()) flush();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %llu events (%llu calls, %llu left live, %zu calls in memory) to %s in %.1f s\n",
              static_cast<unsigned long long>(seq), static_cast<unsigned long long>(calls),
              static_cast<unsigned long long>(left_live), table.size(), o.dir.c_str(), s);
  return 0;
}
