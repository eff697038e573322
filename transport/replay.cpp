#include "transport/replay.hpp"

#include "engine/log.hpp"
#include "engine/notify.hpp"

namespace transport {

replay_worker::replay_worker(const engine::event_reader* reader, std::string base_path, std::size_t max_events,
                             std::size_t max_jobs)
    : reader_(reader), base_path_(std::move(base_path)), max_events_(max_events), max_jobs_(max_jobs) {
  thread_ = std::thread([this] {
    engine::log::name_this_thread("yna-replay");
    run();
  });
}

replay_worker::~replay_worker() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool replay_worker::submit(replay_job job) {
  {
    std::lock_guard lk(mu_);
    if (stopping_ || jobs_.size() >= max_jobs_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void replay_worker::run() {
  for (;;) {
    replay_job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.done(replay(job));
  }
}

replay_result replay_worker::replay(const replay_job& job) const {
  replay_result out;
  if (!reader_) {
    out.ok = false;
    out.error = "replay is not available";
    return out;
  }
  const auto seqs = reader_->party_events(job.msisdns, job.after, job.upto, max_events_);
  if (seqs.size() > max_events_) {
    out.ok = false;
    out.error = "since is too far back: more than the replay limit; reconnect with a later since";
    return out;
  }
  for (const auto seq : seqs) {
    auto e = reader_->read(seq);
    if (!e) {
      out.ok = false;
      out.error = "the log could not be read for replay";
      return out;
    }
    auto n = engine::derive_notification(*e);
    if (!n || !n->is_for(job.sub, job.device_id, job.msisdns)) continue;
    out.frames.emplace_back(n->seq, std::make_shared<const std::string>(engine::encode_notification(*n, base_path_)));
  }
  return out;
}

}  // namespace transport
