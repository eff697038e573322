#include "engine/timer_queue.hpp"

namespace engine {

void timer_queue::rebuild(const call_table& table) {
  q_.clear();
  const deadlines none;
  for (const auto& [id, c] : table.calls())
    if (c.timers.any()) update(id, none, c.timers);
}

void timer_queue::update(const std::string& call_id, const deadlines& before, const deadlines& after) {
  for (int i = 0; i < timer_kind_count; ++i) {
    if (before.slot[i] == after.slot[i]) continue;
    const auto k = static_cast<timer_kind>(i);
    if (before.slot[i]) q_.erase({*before.slot[i], call_id, k});
    if (after.slot[i]) q_.emplace(*after.slot[i], call_id, k);
  }
}

void timer_queue::schedule(epoch_ms at, std::string call_id, timer_kind kind) {
  q_.emplace(at, std::move(call_id), kind);
}

std::optional<timer_queue::entry> timer_queue::pop_due(epoch_ms now) {
  if (q_.empty()) return std::nullopt;
  auto it = q_.begin();
  if (std::get<0>(*it) > now) return std::nullopt;
  auto node = q_.extract(it);
  auto& [at, id, kind] = node.value();
  return entry{at, std::move(id), kind};
}

void timer_queue::erase(epoch_ms at, const std::string& call_id, timer_kind kind) { q_.erase({at, call_id, kind}); }

std::optional<epoch_ms> timer_queue::next() const {
  if (q_.empty()) return std::nullopt;
  return std::get<0>(*q_.begin());
}

}  // namespace engine
