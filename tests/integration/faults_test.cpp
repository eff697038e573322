// Storage faults on the real binary (issue 8): injected WAL and append failures through
// `--fault-injection` (POST /_faults), and a real full disk (a small tmpfs as the data
// folder). Each failure answers 500 or 503 with ErrorInfo, acknowledges nothing, leaves
// the log verifiable, and service comes back by itself once the fault is gone.
#include <doctest/doctest.h>

#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "storage/event_log.hpp"
#include "tests/integration/api_fixture.hpp"

using namespace integration;
namespace fs = std::filesystem;

namespace {

response arm(http_client& c, std::string_view body) {
  auto r = c.post("/_faults", body);
  INFO("POST /_faults ", body, ": ", r.status, " ", r.body);
  REQUIRE(r.status == 200);
  return r;
}

response start_call(http_client& c, const party& mo, const party& mt, std::string_view offer = {}) {
  return c.post("/start", start_body(mo.number, mt.number, offer.empty() ? sdp("offer") : std::string(offer)),
                mo.auth());
}

// The stopped engine's log: verified, and the number of events in it.
std::uint64_t verified_events(const engine_process& e) {
  auto log = storage::event_log::open_reader(e.data_dir() / "log", e.root() / ("reader-" + std::to_string(::rand())));
  REQUIRE(log.has_value());
  const auto rep = (*log)->verify();
  INFO("verify: ", rep.problem, " first_bad ", rep.first_bad);
  CHECK(rep.ok);
  return (*log)->last_seq();
}

bool call_in_log(const engine_process& e, const std::string& id) {
  auto log = storage::event_log::open_reader(e.data_dir() / "log", e.root() / ("reader-" + std::to_string(::rand())));
  REQUIRE(log.has_value());
  return !(*log)->seqs_by_call(id).empty();
}

void check_error(const response& r, int status, std::string_view code) {
  INFO(r.status, " ", r.body);
  CHECK(r.status == status);
  CHECK(is_error_info(r.body));
  CHECK(reason_code_of(r.body) == code);
  if (status == 503) CHECK(r.header("retry-after").has_value());
}

}  // namespace

TEST_CASE("faults: /_faults exists only with --fault-injection and checks its body") {
  engine_process plain;
  http_client c(plain.port());
  CHECK(c.post("/_faults", R"({"wal":"sync_io_error"})").status == 404);

  engine_process e({"--fault-injection"});
  http_client f(e.port());
  for (const char* bad : {"", "[]", R"({"wal":"melt"})", R"({"count":-1})", R"({"append":"fire"})"}) {
    auto r = f.post("/_faults", bad);
    INFO(bad, ": ", r.body);
    CHECK(r.status == 400);
    CHECK(reason_code_of(r.body) == "INVALID_FIELD");
  }
  CHECK(json_str(arm(f, R"({"wal":"none"})").body, "/wal") == "none");
}

TEST_CASE("faults: a failed WAL sync answers 500, acknowledges nothing, and the next request works") {
  engine_process e({"--fault-injection"});
  http_client c(e.port());
  const party mo = new_party(e), mt = new_party(e);
  REQUIRE(start_call(c, mo, mt).status == 200);
  arm(c, R"({"wal":"sync_io_error","count":1})");
  check_error(start_call(c, mo, mt), 500, "INTERNAL_ERROR");
  CHECK(c.get("/readyz").status == 503);  // until a write succeeds again
  const auto ok = start_call(c, mo, mt);
  REQUIRE(ok.status == 200);
  CHECK(c.get("/readyz").status == 200);
  const std::string id = json_str(ok.body, "/callId").value_or("");
  e.stop();
  CHECK(verified_events(e) == 2);  // the failed one is not in the log
  CHECK(call_in_log(e, id));
}

TEST_CASE("faults: an append refused by the event_log seam answers 500 and stores nothing") {
  engine_process e({"--fault-injection"});
  http_client c(e.port());
  const party mo = new_party(e), mt = new_party(e);
  arm(c, R"({"append":"io_error"})");
  check_error(start_call(c, mo, mt), 500, "INTERNAL_ERROR");
  arm(c, R"({"append":"no_space"})");
  check_error(start_call(c, mo, mt), 503, "SERVICE_UNAVAILABLE");
  REQUIRE(start_call(c, mo, mt).status == 200);
  e.stop();
  CHECK(verified_events(e) == 1);
}

TEST_CASE("faults: while the WAL cannot be written every request gets 503, and service returns when it can") {
  engine_process e({"--fault-injection"});
  http_client c(e.port());
  const party mo = new_party(e), mt = new_party(e);
  auto t = make_call(e, c, "Connected");
  arm(c, R"({"wal":"append_no_space"})");
  for (int i = 0; i < 5; ++i) check_error(start_call(c, mo, mt), 503, "SERVICE_UNAVAILABLE");
  check_error(t.post(t.mo, "hold", sdp_body(sdp("hold"))), 503, "SERVICE_UNAVAILABLE");
  CHECK(c.get("/readyz").status == 503);
  CHECK(t.status() == "Connected");  // reads go on
  arm(c, R"({"wal":"none"})");
  response back;
  for (int i = 0; i < 100 && back.status != 200; ++i) {  // at once, or after RocksDB resumes
    back = t.post(t.mo, "hold", sdp_body(sdp("hold")));
    if (back.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(back.status == 200);
  CHECK(c.get("/readyz").status == 200);
  e.stop();
  CHECK(verified_events(e) == 4);  // start, ringing, connected, hold
}

TEST_CASE("faults: sync failures under concurrent load lose no acknowledged transition") {
  engine_process e({"--fault-injection", "--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"});
  std::mutex mu;
  std::vector<std::pair<std::string, int>> acked;  // callId, statuses acknowledged on it
  std::atomic<int> failed{0}, ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      http_client c(e.port());
      while (!stop) {
        const party mo = new_party(e), mt = new_party(e);
        auto r = start_call(c, mo, mt);
        if (r.status != 200) {
          failed += r.status >= 500;
          continue;
        }
        const std::string id = json_str(r.body, "/callId").value_or("");
        int steps = 1;
        for (const char* ep : {"ringing", "connected"}) {
          auto s = c.post("/" + std::string(ep) + "/" + id, ep == std::string("connected") ? sdp_body(sdp("a")) : "{}",
                          mt.auth());
          if (s.status != 200) {
            failed += s.status >= 500;
            break;
          }
          ++steps;
        }
        ok += steps;
        std::lock_guard lk(mu);
        acked.emplace_back(id, steps);
      }
    });
  }
  http_client ctl(e.port());
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    arm(ctl, R"({"wal":"sync_io_error","count":1})");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& t : workers) t.join();
  MESSAGE(ok.load(), " transitions acknowledged, ", failed.load(), " refused with 5xx");
  CHECK(failed > 0);  // the faults really hit requests
  e.stop();
  auto log = storage::event_log::open_reader(e.data_dir() / "log", e.root() / "reader-load");
  REQUIRE(log.has_value());
  CHECK((*log)->verify().ok);
  int missing = 0;
  for (const auto& [id, steps] : acked) {
    const auto seqs = (*log)->seqs_by_call(id);
    int accepted = 0;
    for (auto s : seqs) accepted += (*log)->get(s)->accepted();
    if (accepted != steps) ++missing;
  }
  CHECK(missing == 0);
}

// A real full disk: the data folder is a 24 MiB tmpfs, filled until writes fail.
TEST_CASE("faults: a real full disk answers 503, loses nothing, and service returns when space does") {
  REQUIRE_MESSAGE(::geteuid() == 0, "mounting a tmpfs needs root (CI runs as root)");
  engine_process e({"--rate-limit", "0", "--rate-limit-sub", "0", "--max-connections-per-ip", "0"}, /*start_now=*/false);
  fs::create_directories(e.data_dir());
  REQUIRE(::mount("tmpfs", e.data_dir().c_str(), "tmpfs", 0, "size=24m") == 0);
  struct unmount {
    fs::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } guard{e.data_dir()};
  e.start();
  http_client c(e.port());
  const party mo = new_party(e), mt = new_party(e);
  REQUIRE(start_call(c, mo, mt).status == 200);

  // Leave about 1.5 MiB, then write 30 KiB offers until the disk is full.
  struct statvfs sv {};
  REQUIRE(::statvfs(e.data_dir().c_str(), &sv) == 0);
  const auto avail = static_cast<std::uintmax_t>(sv.f_bavail) * sv.f_frsize;
  const fs::path filler = e.data_dir() / "filler";
  {
    std::ofstream f(filler, std::ios::binary);
    std::string block(1 << 20, 'x');
    for (std::uintmax_t left = avail - (3 << 19); left > 0;) {
      const auto n = std::min<std::uintmax_t>(left, block.size());
      f.write(block.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
  }
  const std::string big = sdp("big") + "a=x:" + std::string(30000, 'a') + "\r\n";
  std::vector<std::string> acked;
  int full = 0;
  for (int i = 0; i < 200 && full < 5; ++i) {
    auto r = start_call(c, mo, mt, big);
    if (r.status == 200) {
      acked.push_back(json_str(r.body, "/callId").value_or(""));
    } else {
      check_error(r, 503, "SERVICE_UNAVAILABLE");
      ++full;
    }
  }
  REQUIRE(full == 5);
  CHECK(c.get("/readyz").status == 503);

  fs::remove(filler);
  response back;
  for (int i = 0; i < 100 && back.status != 200; ++i) {
    back = start_call(c, mo, mt);
    if (back.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(back.status == 200);
  acked.push_back(json_str(back.body, "/callId").value_or(""));
  CHECK(c.get("/readyz").status == 200);
  MESSAGE(acked.size(), " calls acknowledged around a full disk");

  e.restart();  // and everything acknowledged is there after a restart
  http_client after(e.port());
  for (const auto& id : acked) CHECK(after.get("/calls/" + id, mo.auth()).status == 200);
  e.stop();
  CHECK(verified_events(e) == acked.size() + 1);
}
