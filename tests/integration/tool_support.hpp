#pragma once
// What the yna-tool tests share: running the tool on an engine's data folder, driving
// calls with transaction ids the test chose and wall-clock brackets around each
// request (so the tool's output can be checked against what the test did, not against
// the log), and editing the stopped engine's RocksDB directly (the tamper tests).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "tests/integration/api_fixture.hpp"

namespace integration::tool {

struct tool_result {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs `yna-tool --data-dir <eng's data> <args>`; args are passed to /bin/sh as written.
// Fails the test (REQUIRE) when the tool was not built.
tool_result run(const engine_process& eng, const std::string& args);
// The same on any folder.
tool_result run_in(const std::filesystem::path& data_dir, const std::filesystem::path& scratch, const std::string& args);

// Epoch milliseconds now (the engine stamps events with the same system clock).
std::int64_t now_ms();
// A random RFC 4122 GUID, for x-transaction-id.
std::string new_guid();
// The boolean at a JSON pointer; nullopt when absent, not a bool or not JSON.
std::optional<bool> json_bool(std::string_view body, std::string_view pointer);
// Non-empty lines of text.
std::vector<std::string> lines(std::string_view text);

// One request as the test saw it.
struct step {
  std::string txn;             // the x-transaction-id sent
  int status = 0;
  std::string body;            // response body
  std::int64_t before_ms = 0;  // wall clock just before sending
  std::int64_t after_ms = 0;   // and just after the answer
};

// Drives calls on one engine over one connection; every request carries a fresh
// transaction id and is recorded in `steps` in order. With one caller per engine and
// nothing else talking to it, steps[i] is the event at seq i+1.
class caller {
 public:
  explicit caller(const engine_process& eng) : http_(eng.port()) {}
  // POST /start; returns the callId ("" when not 200).
  std::string start(const party& mo, const party& mt, const std::string& sdp_text,
                    std::optional<std::string> correlator = std::nullopt);
  // POST /<verb>/<id>, with {"sdp":…} when sdp_text is given, else "{}".
  step act(const std::string& verb, const std::string& id, const party& who,
           std::optional<std::string> sdp_text = std::nullopt);
  // DELETE /end/<id>, with the `reason` header when given.
  step end(const std::string& id, const party& who, std::optional<std::string> reason = std::nullopt);
  std::vector<step> steps;

 private:
  step send(const std::string& method, const std::string& target, const std::string& body, const party& who,
            header_list extra);
  http_client http_;
};

// The stopped engine's RocksDB, opened directly with every column family (families:
// "events", "by_call", "by_msisdn", "by_txn", "meta", "calls", "by_start"; event keys are
// 8-byte big-endian seqs, `calls` keys are call ids, storage/README.md).
class raw_db {
 public:
  explicit raw_db(const std::filesystem::path& data_dir);
  ~raw_db();
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;
  std::optional<std::string> get(std::string_view family, std::uint64_t seq);
  void put(std::string_view family, std::uint64_t seq, std::string_view value);
  void remove(std::string_view family, std::uint64_t seq);
  // By a key of bytes (the `calls` family: a call id).
  std::optional<std::string> get_key(std::string_view family, std::string_view key);
  void put_key(std::string_view family, std::string_view key, std::string_view value);
  // An index entry: key [id][0x00][seq:8].
  void remove_index(std::string_view family, std::string_view id, std::uint64_t seq);
  // The highest seq key in the family, 0 when empty.
  std::uint64_t last(std::string_view family);

 private:
  struct impl;
  impl* impl_;
};

struct done_call {
  std::string id, from, to;
};

// Makes complete calls (start, ringing, connected, end) until told to stop; records
// the calls whose every request was acknowledged, and any other answer.
class traffic {
 public:
  explicit traffic(const engine_process& eng, int workers) {
    for (int i = 0; i < workers; ++i)
      threads_.emplace_back([this, &eng] {
        caller k(eng);
        while (!stop_) {
          const party a = new_party(eng, "a"), b = new_party(eng, "b");
          const std::string id = k.start(a, b, sdp("a"));
          bool ok = !id.empty() && k.act("ringing", id, b).status == 200 &&
                    k.act("connected", id, b, sdp("b")).status == 200 && k.end(id, a).status == 200;
          std::lock_guard lk(mu_);
          if (ok) done_.push_back({id, a.number, b.number});
          else failures_.push_back(k.steps.back().body);
        }
      });
  }
  ~traffic() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::vector<done_call> done() {
    std::lock_guard lk(mu_);
    return done_;
  }
  std::vector<std::string> failures() {
    std::lock_guard lk(mu_);
    return failures_;
  }
  // Waits until at least n calls are done (30 s at most).
  void await(std::size_t n) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (done().size() < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(done().size() >= n);
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<done_call> done_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

}  // namespace integration::tool
