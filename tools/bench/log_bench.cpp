// yna-logbench: the durable log alone, without HTTP. Four ways to make events durable
// on the same disk, each for --seconds, in a fresh folder under --dir:
//
//   rocksdb-single   raw RocksDB, one event per synced write, one writer
//   rocksdb-batch    raw RocksDB, --batch events per synced write (one WriteBatch), one writer
//   rocksdb-threads  raw RocksDB, --appenders threads each making one synced write at a time
//                    (RocksDB's own write grouping)
//   engine           engine::reactor over storage::event_log (what yna-engine runs):
//                    --appenders calls in flight, each start → ringing → connected → end,
//                    every event decided, hash-chained, indexed and fsynced (group commit)
//
// Prints events/s, events per sync and this process's CPU per event (every thread: for
// the engine mode that is the reactor, the log's writer, RocksDB and the one driver
// thread) for each, and with --json one JSON object.
// The event written by the raw RocksDB modes is a real encoded start event (~300 bytes).
#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine/clock.hpp"
#include "engine/codec.hpp"
#include "engine/reactor.hpp"
#include "storage/event_log.hpp"

namespace {

namespace fs = std::filesystem;
using clk = std::chrono::steady_clock;

struct result {
  std::string name;
  double seconds = 0;
  std::uint64_t events = 0, syncs = 0;
  double cpu_s = 0;  // this process's user+sys during the mode (every thread)
  double per_s() const { return seconds > 0 ? static_cast<double>(events) / seconds : 0; }
  double cpu_us_per_event() const { return events ? cpu_s * 1e6 / static_cast<double>(events) : 0; }
};

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

std::string sample_event() {
  engine::event e;
  e.seq = 1;
  e.time = 1'700'000'000'000;
  e.act = engine::action::start;
  e.call_id = "0AEE1B58BAEEDA3EABA42B32EBB3DFE0";
  e.msisdn = "14250000001";
  e.sub = "bench";
  e.device_id = "dev-1";
  e.txn_id = "6f1c2a3b-1d2e-4f50-8a9b-0c1d2e3f4a5b";
  e.method = "POST";
  e.path = "/start";
  e.from = "14250000001";
  e.to = "14250000002";
  e.sdp = sdp;
  e.prev_hash = std::string(64, '0');
  return engine::encode_event(e);
}

std::unique_ptr<rocksdb::DB> open_raw(const fs::path& dir) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  const auto st = rocksdb::DB::Open(opts, dir.string(), &db);
  if (!st.ok()) throw std::runtime_error("rocksdb open " + dir.string() + ": " + st.ToString());
  return std::unique_ptr<rocksdb::DB>(db);
}

std::string key_of(std::uint64_t n) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, n >>= 8) k[static_cast<std::size_t>(i)] = static_cast<char>(n & 0xff);
  return k;
}

result raw_batches(const fs::path& dir, double seconds, std::size_t batch, std::string name) {
  auto db = open_raw(dir);
  const std::string value = sample_event();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  result r{std::move(name)};
  const auto t0 = clk::now();
  const auto until = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds));
  std::uint64_t n = 0;
  while (clk::now() < until) {
    rocksdb::WriteBatch wb;
    for (std::size_t i = 0; i < batch; ++i) wb.Put(key_of(++n), value);
    if (!db->Write(wo, &wb).ok()) throw std::runtime_error("rocksdb write failed");
    r.events += batch;
    ++r.syncs;
  }
  r.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  return r;
}

result raw_threads(const fs::path& dir, double seconds, std::size_t appenders) {
  auto db = open_raw(dir);
  const std::string value = sample_event();
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ths;
  const auto t0 = clk::now();
  for (std::size_t a = 0; a < appenders; ++a)
    ths.emplace_back([&] {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      while (!stop.load(std::memory_order_relaxed))
        if (!db->Put(wo, key_of(next.fetch_add(1) + 1), value).ok()) std::abort();
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ths) t.join();
  result r{"rocksdb-threads"};
  r.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  r.events = next.load();
  std::string v;
  if (db->GetProperty("rocksdb.stats", &v)) {
    // "Cumulative WAL: N writes, M syncs": the syncs RocksDB actually made.
    const auto at = v.find("Cumulative WAL:");
    if (at != std::string::npos) {
      const auto w = v.find("writes, ", at);
      if (w != std::string::npos) r.syncs = std::strtoull(v.c_str() + w + 8, nullptr, 10);
    }
  }
  return r;
}

// The engine's own path: reactor decides, event_log hash-chains, indexes and syncs.
result engine_path(const fs::path& dir, double seconds, std::size_t appenders, std::size_t pipeline) {
  storage::log_options lo;
  lo.dir = dir;
  lo.sync = true;
  auto opened = storage::event_log::open(lo);
  if (!opened) throw std::runtime_error("event_log open: " + opened.error().detail);
  auto log = std::move(*opened);
  std::atomic<std::uint64_t> syncs{0}, events{0};
  log->set_sync_observer([&](std::size_t n, double, bool ok) {
    if (!ok) return;
    syncs.fetch_add(1, std::memory_order_relaxed);
    events.fetch_add(n, std::memory_order_relaxed);
  });
  engine::system_clock clock;
  engine::registry metrics;
  engine::reactor_options ro;
  ro.max_inflight_batches = pipeline;
  engine::reactor reactor(*log, clock, metrics, ro, engine::call_table{});
  std::thread reactor_thread([&] { reactor.run(); });

  // One driver thread (as an I/O thread would) submits each appender's next command as
  // soon as the reply to its previous one arrives.
  struct appender {
    std::string mo, mt, call_id;
    int step = 0;
    std::uint64_t calls = 0;
  };
  std::vector<appender> as(appenders);
  for (std::size_t i = 0; i < appenders; ++i)
    as[i] = {fmt::format("1425{:07d}", 2 * i + 1), fmt::format("1425{:07d}", 2 * i + 2), {}, 0, 0};
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::size_t> ready;
  for (std::size_t i = 0; i < appenders; ++i) ready.push_back(i);
  std::uint64_t failures = 0;
  const auto t0 = clk::now();
  const auto until = t0 + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(seconds));
  std::size_t outstanding = 0;
  std::unique_lock lk(mu);
  for (;;) {
    cv.wait(lk, [&] { return !ready.empty(); });
    const std::size_t i = ready.front();
    ready.pop_front();
    if (clk::now() >= until) {
      if (outstanding == 0) break;
      continue;
    }
    appender& a = as[i];
    engine::command c;
    static const engine::action steps[] = {engine::action::start, engine::action::ringing, engine::action::connected,
                                           engine::action::end};
    c.act = steps[a.step];
    const bool by_mo = c.act == engine::action::start || c.act == engine::action::end;
    c.who = engine::actor{by_mo ? "mo" : "mt", "dev", {by_mo ? a.mo : a.mt}, false, ""};
    c.txn_id = fmt::format("6f1c2a3b-1d2e-4f50-8a9b-{:012x}", (i << 24) + a.calls * 4 + static_cast<std::uint64_t>(a.step));
    c.method = c.act == engine::action::end ? "DELETE" : "POST";
    if (c.act == engine::action::start) {
      a.call_id = fmt::format("{:016X}{:016X}", i + 1, a.calls + 1);
      c.new_call_id = a.call_id;
      c.from = a.mo;
      c.to = a.mt;
      c.sdp = sdp;
      c.path = "/start";
    } else {
      c.call_id = a.call_id;
      c.path = fmt::format("/{}/{}", engine::to_string(c.act), a.call_id);
      if (c.act == engine::action::connected) c.sdp = sdp;
    }
    a.step = (a.step + 1) % 4;
    if (a.step == 0) ++a.calls;
    ++outstanding;
    lk.unlock();
    const bool ok = reactor.submit(std::move(c), [&, i](engine::reply r) {
      std::lock_guard g(mu);
      if (r.code != engine::reason_code::none) ++failures;
      --outstanding;
      ready.push_back(i);
      cv.notify_one();
    });
    lk.lock();
    if (!ok) throw std::runtime_error("reactor refused a command (max_pending)");
  }
  lk.unlock();
  result r{"engine"};
  r.seconds = std::chrono::duration<double>(clk::now() - t0).count();
  reactor.stop();
  reactor_thread.join();
  r.events = events.load();
  r.syncs = syncs.load();
  if (failures) fmt::print(stderr, "engine: {} commands rejected\n", failures);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5;
  std::size_t batch = 64, appenders = 64, pipeline = 2;
  std::string dir = fs::temp_directory_path().string(), only;
  bool json = false, keep = false;
  CLI::App app{"yna-logbench: durable events per second, raw RocksDB against the engine's group commit"};
  app.option_defaults()->always_capture_default();
  app.add_option("--seconds", seconds, "Seconds per mode");
  app.add_option("--batch", batch, "Events per write in rocksdb-batch");
  app.add_option("--appenders", appenders, "Concurrent appenders in rocksdb-threads and engine");
  app.add_option("--pipeline", pipeline, "Engine mode: log writes in flight at once (yna-engine --write-pipeline)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16}));
  app.add_option("--dir", dir, "Where the temporary logs go (the disk under test)");
  app.add_option("--only", only, "Run one mode: rocksdb-single, rocksdb-batch, rocksdb-threads, engine");
  app.add_flag("--json", json, "One JSON object on stdout");
  app.add_flag("--keep", keep, "Leave the logs in --dir (deleting files on a `discard` mount slows later fsyncs)");
  CLI11_PARSE(app, argc, argv);

  std::string tmpl = (fs::path(dir) / "yna-logbench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    fmt::print(stderr, "cannot make a folder in {}\n", dir);
    return 2;
  }
  const fs::path root = tmpl;
  std::vector<result> results;
  try {
    auto want = [&](std::string_view m) { return only.empty() || only == m; };
    auto timed = [&](auto&& mode) {
      const double c0 = process_cpu_s();
      result r = mode();
      r.cpu_s = process_cpu_s() - c0;
      results.push_back(std::move(r));
    };
    if (want("rocksdb-single")) timed([&] { return raw_batches(root / "single", seconds, 1, "rocksdb-single"); });
    if (want("rocksdb-batch")) timed([&] { return raw_batches(root / "batch", seconds, batch, "rocksdb-batch"); });
    if (want("rocksdb-threads")) timed([&] { return raw_threads(root / "threads", seconds, appenders); });
    if (want("engine")) timed([&] { return engine_path(root / "engine", seconds, appenders, pipeline); });
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    if (!keep) fs::remove_all(root);
    return 1;
  }
  if (!keep) fs::remove_all(root);
  if (json) {
    std::string s = "{";
    for (const auto& r : results)
      s += fmt::format(R"({}"{}":{{"events_per_s":{:.1f},"events":{},"syncs":{},"events_per_sync":{:.2f},"seconds":{:.2f},"cpu_us_per_event":{:.2f}}})",
                       s.size() > 1 ? "," : "", r.name, r.per_s(), r.events, r.syncs,
                       r.syncs ? static_cast<double>(r.events) / static_cast<double>(r.syncs) : 0.0, r.seconds,
                       r.cpu_us_per_event());
    fmt::print("{}}}\n", s);
  } else {
    fmt::print("{:<16} {:>12} {:>10} {:>10} {:>16} {:>14}\n", "mode", "events/s", "events", "syncs", "events per sync",
               "CPU µs/event");
    for (const auto& r : results)
      fmt::print("{:<16} {:>12.0f} {:>10} {:>10} {:>16.2f} {:>14.2f}\n", r.name, r.per_s(), r.events, r.syncs,
                 r.syncs ? static_cast<double>(r.events) / static_cast<double>(r.syncs) : 0.0, r.cpu_us_per_event());
  }
  return 0;
}
