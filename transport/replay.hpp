#pragma once
// Notification replay from the log (GET /notifications?since=N): a worker thread reads
// the events of a device's numbers in (after, upto], derives their notifications and
// encodes the frames for that device. Keeps blocking reads off the reactor and the I/O
// threads. Bounded: at most `max_jobs` waiting jobs and `max_events` events per job.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/event_store.hpp"
#include "transport/notifier.hpp"

namespace transport {

struct replay_result {
  bool ok = true;
  std::string error;  // when !ok: why (too many events, unreadable log)
  std::vector<std::pair<engine::event_seq, frame_ptr>> frames;
};

struct replay_job {
  std::vector<std::string> msisdns;
  std::string sub, device_id;
  engine::event_seq after = 0, upto = 0;
  std::function<void(replay_result)> done;  // called on the worker thread
};

class replay_worker {
 public:
  replay_worker(const engine::event_reader* reader, std::string base_path, std::size_t max_events,
                std::size_t max_jobs = 1024);
  ~replay_worker();
  replay_worker(const replay_worker&) = delete;
  replay_worker& operator=(const replay_worker&) = delete;

  // False when too many jobs wait (the caller closes the socket: retry later).
  [[nodiscard]] bool submit(replay_job job);

 private:
  void run();
  replay_result replay(const replay_job& job) const;

  const engine::event_reader* reader_;
  std::string base_path_;
  std::size_t max_events_, max_jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<replay_job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace transport
