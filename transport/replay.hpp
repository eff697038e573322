#pragma once
// Notification replay from the log (GET /notifications?since=N): a worker thread reads
// the events of a device's numbers in (after, upto], derives their notifications and
// encodes the frames for that device. Keeps blocking reads off the reactor and the I/O
// threads. Bounded (replay_limits): waiting jobs, events per job, and the bytes of
// replayed frames that sockets hold until they have written them, all sockets together
// (a socket that asks for a replay and does not read holds its frames: without this
// bound, many such sockets could hold many replays' worth of memory).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/event_store.hpp"
#include "engine/metrics.hpp"
#include "transport/notifier.hpp"

namespace transport {

struct replay_limits {
  std::size_t max_events = 10000;              // events one replay may read (--max-replay-events)
  std::size_t max_jobs = 1024;                 // replays waiting for the worker (--max-replay-jobs; 0: no limit)
  std::size_t max_bytes = 256u * 1024 * 1024;  // replayed frames not yet written, all sockets
                                               // (--max-replay-bytes; 0: no limit)
};

// The worker's byte budget, shared with the leases (which may outlive the worker).
struct replay_budget {
  std::atomic<std::size_t> held{0};
  engine::gauge* gauge = nullptr;  // yna_ws_replay_bytes
  void add(std::int64_t n) {
    held.fetch_add(static_cast<std::size_t>(n));
    if (gauge) gauge->add(n);
  }
};

// The bytes of one replay's frames, held against the budget until the socket has written
// them (release() as each goes out) or is gone (the destructor). Move-only; one thread.
class replay_lease {
 public:
  replay_lease() = default;
  replay_lease(std::shared_ptr<replay_budget> b, std::size_t bytes) : b_(std::move(b)), bytes_(bytes) {
    b_->add(static_cast<std::int64_t>(bytes_));
  }
  replay_lease(replay_lease&& o) noexcept : b_(std::move(o.b_)), bytes_(std::exchange(o.bytes_, 0)) {}
  replay_lease& operator=(replay_lease&& o) noexcept {
    if (this != &o) {
      release(bytes_);
      b_ = std::move(o.b_);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  replay_lease(const replay_lease&) = delete;
  replay_lease& operator=(const replay_lease&) = delete;
  ~replay_lease() { release(bytes_); }
  void release(std::size_t n) {
    n = std::min(n, bytes_);
    if (n == 0) return;
    bytes_ -= n;
    b_->add(-static_cast<std::int64_t>(n));
  }
  std::size_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<replay_budget> b_;
  std::size_t bytes_ = 0;
};

struct replay_result {
  bool ok = true;
  bool busy = false;  // when !ok: refused for load (the byte budget), not for the request
  std::string error;  // when !ok: why (too many events, unreadable log, busy)
  std::vector<std::pair<engine::event_seq, frame_ptr>> frames;
  replay_lease lease;  // the frames' bytes
};

struct replay_job {
  std::vector<std::string> msisdns;
  std::string sub, device_id;
  engine::event_seq after = 0, upto = 0;
  std::function<void(replay_result)> done;  // called on the worker thread
};

class replay_worker {
 public:
  // `metrics` (may be null): yna_ws_replay_bytes, yna_ws_replay_jobs,
  // yna_ws_replay_refused_total{why}.
  replay_worker(const engine::event_reader* reader, std::string base_path, replay_limits limits,
                engine::registry* metrics = nullptr);
  ~replay_worker();
  replay_worker(const replay_worker&) = delete;
  replay_worker& operator=(const replay_worker&) = delete;

  // False when too many jobs wait (the caller closes the socket: retry later).
  [[nodiscard]] bool submit(replay_job job);
  // Bytes of replayed frames not yet written by their sockets (at most limits.max_bytes).
  std::size_t bytes_held() const { return budget_->held.load(); }

 private:
  void run();
  replay_result replay(const replay_job& job) const;

  const engine::event_reader* reader_;
  std::string base_path_;
  replay_limits limits_;
  std::shared_ptr<replay_budget> budget_ = std::make_shared<replay_budget>();
  engine::gauge* jobs_gauge_ = nullptr;
  engine::counter* refused_jobs_ = nullptr;
  engine::counter* refused_bytes_ = nullptr;
  engine::counter* refused_archived_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<replay_job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace transport
