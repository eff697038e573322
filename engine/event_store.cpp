#include "engine/event_store.hpp"

#include "engine/call_table.hpp"
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

void memory_store::write(std::vector<event>& batch, const std::vector<call_change>* calls,
                         const side_changes* side) {
  ++appends_;
  std::string prev =
      events_.empty() ? std::string(64, '0') : schemas::to_hex(schemas::sha256(encode_event(events_.back())));
  for (auto& e : batch) {
    e.prev_hash = prev;
    events_.push_back(e);
    prev = schemas::to_hex(schemas::sha256(encode_event(e)));
  }
  if (side) {
    for (const auto& p : side->pushers) {
      if (p.after)
        persisted_pushers_.insert_or_assign({p.sub, p.device_id}, *p.after);
      else
        persisted_pushers_.erase({p.sub, p.device_id});
    }
    for (const auto& s : side->settings) {
      if (s.after)
        persisted_settings_.insert_or_assign(s.msisdn, *s.after);
      else
        persisted_settings_.erase(s.msisdn);
    }
  }
  if (!calls) return;
  for (const auto& c : *calls) {
    if (c.after)
      persisted_.insert_or_assign(c.call_id, *c.after);
    else
      persisted_.erase(c.call_id);
  }
}

std::optional<store_error> memory_store::complete(std::vector<event>& batch, const std::vector<call_change>* calls,
                                                  const side_changes* side) {
  if (fail_next_) {
    fail_next_ = false;
    if (!discarding_ && !batch.empty()) expect_next_ = batch.front().seq;
    discarding_ = true;
    return fail_with_;
  }
  // Numbered past a batch that failed (decided before the caller heard of it): fails too.
  if (discarding_ && !batch.empty() && batch.front().seq != expect_next_) return fail_with_;
  discarding_ = false;
  write(batch, calls, side);
  return std::nullopt;
}

void memory_store::append_async(std::vector<event>& batch, const std::vector<call_change>* calls,
                                const side_changes* side, append_done done) {
  std::optional<store_error> err;
  {
    std::lock_guard lk(mu_);
    if (paused_) {
      waiting_.push_back(waiting{&batch, calls, side, std::move(done)});
      return;
    }
    err = complete(batch, calls, side);
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
  std::deque<waiting> ready;
  std::vector<std::optional<store_error>> results;
  {
    std::lock_guard lk(mu_);
    paused_ = false;
    ready.swap(waiting_);
    for (auto& w : ready) results.push_back(complete(*w.batch, w.calls, w.side));
  }
  for (std::size_t i = 0; i < ready.size(); ++i) {
    if (results[i])
      ready[i].done(schemas::failure{*results[i]});
    else
      ready[i].done({});
  }
}

bool memory_store::has_waiting_append() const {
  std::lock_guard lk(mu_);
  return !waiting_.empty();
}

std::size_t memory_store::waiting_appends() const {
  std::lock_guard lk(mu_);
  return waiting_.size();
}

std::optional<call_state> memory_store::load_call(std::string_view call_id) const {
  std::vector<event> mine;
  {
    std::lock_guard lk(mu_);
    ++lookups_;
    for (const auto& e : events_)
      if (e.call_id == call_id) mine.push_back(e);
  }
  return fold_call(mine);
}

std::optional<std::string> memory_store::find_start(std::string_view from, std::string_view correlator) const {
  std::lock_guard lk(mu_);
  ++lookups_;
  for (const auto& e : events_)
    if (e.act == action::start && e.accepted() && !e.noop && mo_party(e.from, e.gateway) == from && e.client_correlator &&
        *e.client_correlator == correlator)
      return e.call_id;
  return std::nullopt;
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
std::map<std::string, call_state> memory_store::persisted_calls() const {
  std::lock_guard lk(mu_);
  return persisted_;
}
std::map<std::pair<std::string, std::string>, pusher> memory_store::persisted_pushers() const {
  std::lock_guard lk(mu_);
  return persisted_pushers_;
}
std::map<std::string, number_settings> memory_store::persisted_settings() const {
  std::lock_guard lk(mu_);
  return persisted_settings_;
}
std::size_t memory_store::lookups() const {
  std::lock_guard lk(mu_);
  return lookups_;
}

}  // namespace engine
