#include "transport/replay.hpp"

#include "engine/log.hpp"
#include "engine/notify.hpp"

namespace transport {

replay_worker::replay_worker(const engine::event_reader* reader, std::string base_path, replay_limits limits,
                             engine::registry* metrics)
    : reader_(reader), base_path_(std::move(base_path)), limits_(limits) {
  if (metrics) {
    budget_->gauge = &metrics->get_gauge(
        "yna_ws_replay_bytes", "Bytes of replayed notification frames not yet written, all sockets (--max-replay-bytes)");
    jobs_gauge_ = &metrics->get_gauge("yna_ws_replay_jobs", "Notification replays waiting for the worker (--max-replay-jobs)");
    const char* help = "Notification replays refused for load (socket closed 1013): too many waiting "
                       "(--max-replay-jobs) or their frames over --max-replay-bytes";
    refused_jobs_ = &metrics->get_counter("yna_ws_replay_refused_total", help, "why=\"jobs\"");
    refused_bytes_ = &metrics->get_counter("yna_ws_replay_refused_total", help, "why=\"bytes\"");
    refused_archived_ = &metrics->get_counter(
        "yna_ws_replay_archived_total", "Notification replays refused (socket closed 1008): since before the log's anchor");
  }
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
    if (stopping_ || (limits_.max_jobs != 0 && jobs_.size() >= limits_.max_jobs)) {
      if (refused_jobs_ && !stopping_) refused_jobs_->inc();
      return false;
    }
    jobs_.push_back(std::move(job));
    if (jobs_gauge_) jobs_gauge_->set(static_cast<std::int64_t>(jobs_.size()));
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
      if (jobs_gauge_) jobs_gauge_->set(static_cast<std::int64_t>(jobs_.size()));
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
  // Events 1..anchor were archived out of the live log (contract §9): a replay from
  // before the anchor cannot be whole, so it is refused (1008) naming where the log starts.
  if (const auto anchor = reader_->anchor_seq(); job.after < anchor) {
    if (refused_archived_) refused_archived_->inc();
    out.ok = false;
    out.error = "since " + std::to_string(job.after) + " is before the log's anchor " + std::to_string(anchor) +
                " (archived); reconnect with since >= " + std::to_string(anchor);
    return out;
  }
  const auto seqs = reader_->party_events(job.msisdns, job.after, job.upto, limits_.max_events);
  if (seqs.size() > limits_.max_events) {
    out.ok = false;
    out.error = "since is too far back: more than the replay limit; reconnect with a later since";
    return out;
  }
  std::size_t bytes = 0;
  for (const auto seq : seqs) {
    auto e = reader_->read(seq);
    if (!e) {
      out.ok = false;
      out.error = "the log could not be read for replay";
      return out;
    }
    auto n = engine::derive_notification(*e);
    if (!n || !n->is_for(job.sub, job.device_id, job.msisdns)) continue;
    auto frame = std::make_shared<const std::string>(engine::encode_notification(*n, base_path_));
    bytes += frame->size();
    // Only this thread adds to the budget (sockets only give back): checked, then taken.
    if (limits_.max_bytes != 0 && budget_->held.load() + bytes > limits_.max_bytes) {
      if (refused_bytes_) refused_bytes_->inc();
      out.ok = false;
      out.busy = true;
      out.frames.clear();
      out.error = "replay busy (--max-replay-bytes); reconnect later or with a later since";
      return out;
    }
    out.frames.emplace_back(n->seq, std::move(frame));
  }
  out.lease = replay_lease(budget_, bytes);
  return out;
}

}  // namespace transport
