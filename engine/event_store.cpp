#include "engine/event_store.hpp"

#include "engine/codec.hpp"
#include "schemas/digest.hpp"

namespace engine {

std::string_view to_string(store_error e) noexcept {
  switch (e) {
    case store_error::io_error: return "io_error";
    case store_error::no_space: return "no_space";
    case store_error::corruption: return "corruption";
    case store_error::closed: return "closed";
  }
  return "?";
}

void memory_store::write(std::vector<event>& batch) {
  ++appends_;
  std::string prev =
      events_.empty() ? std::string(64, '0') : schemas::to_hex(schemas::sha256(encode_event(events_.back())));
  for (auto& e : batch) {
    e.prev_hash = prev;
    events_.push_back(e);
    prev = schemas::to_hex(schemas::sha256(encode_event(e)));
  }
}

void memory_store::append_async(std::vector<event>& batch, append_done done) {
  std::optional<store_error> err;
  {
    std::lock_guard lk(mu_);
    if (paused_) {
      waiting_batch_ = &batch;
      waiting_done_ = std::move(done);
      return;
    }
    if (fail_next_) {
      fail_next_ = false;
      err = fail_with_;
    } else {
      write(batch);
    }
  }
  if (err)
    done(schemas::failure{*err});
  else
    done({});
}

void memory_store::pause() {
  std::lock_guard lk(mu_);
  paused_ = true;
}

void memory_store::resume() {
  append_done done;
  {
    std::lock_guard lk(mu_);
    paused_ = false;
    if (!waiting_batch_) return;
    write(*waiting_batch_);
    waiting_batch_ = nullptr;
    done = std::move(waiting_done_);
  }
  done({});
}

bool memory_store::has_waiting_append() const {
  std::lock_guard lk(mu_);
  return waiting_batch_ != nullptr;
}

void memory_store::save_snapshot_async(event_seq seq, std::string bytes) {
  std::lock_guard lk(mu_);
  snapshots_.emplace_back(seq, std::move(bytes));
}

void memory_store::fail_next_append(store_error e) {
  std::lock_guard lk(mu_);
  fail_next_ = true;
  fail_with_ = e;
}

std::vector<event> memory_store::events() const {
  std::lock_guard lk(mu_);
  return events_;
}
std::size_t memory_store::appends() const {
  std::lock_guard lk(mu_);
  return appends_;
}
std::vector<std::pair<event_seq, std::string>> memory_store::snapshots() const {
  std::lock_guard lk(mu_);
  return snapshots_;
}

}  // namespace engine
