#include "engine/call_table.hpp"

#include "engine/decide.hpp"

namespace engine {

std::string call_table::start_key(std::string_view from, std::string_view correlator) {
  std::string k;
  k.reserve(from.size() + 1 + correlator.size());
  k.append(from).push_back('\0');
  k.append(correlator);
  return k;
}

const call_state* call_table::find(std::string_view call_id) const {
  auto it = calls_.find(std::string(call_id));
  return it == calls_.end() ? nullptr : &it->second;
}

const call_state* call_table::find_start(std::string_view from, std::string_view correlator) const {
  auto it = starts_.find(start_key(from, correlator));
  return it == starts_.end() ? nullptr : find(it->second);
}

void call_table::index(const call_state& c) {
  if (c.client_correlator) starts_.emplace(start_key(mo_party(c.from, c.gateway), *c.client_correlator), c.call_id);
}

void call_table::track_ringing(const call_state& c) {
  if (is_early(c.status)) {
    ringing_[c.to].emplace(c.start_seq, c.call_id);
    return;
  }
  auto it = ringing_.find(c.to);
  if (it == ringing_.end()) return;
  it->second.erase(c.start_seq);
  if (it->second.empty()) ringing_.erase(it);
}

std::vector<const call_state*> call_table::ringing(std::string_view msisdn) const {
  std::vector<const call_state*> out;
  auto it = ringing_.find(std::string(msisdn));
  if (it == ringing_.end()) return out;
  for (const auto& [seq, id] : it->second)
    if (const call_state* c = find(id)) out.push_back(c);
  return out;
}

std::size_t call_table::ringing_count(std::string_view msisdn) const {
  auto it = ringing_.find(std::string(msisdn));
  return it == ringing_.end() ? 0 : it->second.size();
}

std::size_t call_table::live_from_count(std::string_view msisdn) const {
  auto it = live_from_.find(std::string(msisdn));
  return it == live_from_.end() ? 0 : it->second;
}

void call_table::count_live(const std::string& from, bool live) {
  if (live) {
    ++active_;
    ++live_from_[from];
    return;
  }
  --active_;
  auto it = live_from_.find(from);
  if (it != live_from_.end() && --it->second == 0) live_from_.erase(it);
}

void call_table::apply(const event& e) {
  last_seq_ = e.seq;
  if (!e.accepted() || e.noop) return;
  if (is_pusher_action(e.act)) {
    pushers_.apply(e);
    return;
  }
  if (e.act == action::start) {
    call_state c;
    engine::apply(c, e);
    index(c);
    if (is_early(c.status)) track_ringing(c);
    if (!is_ended(c.status)) count_live(mo_party(c.from, c.gateway), true);  // a start ended at once (ringing cap) is not live
    calls_.insert_or_assign(c.call_id, std::move(c));
    return;
  }
  auto it = calls_.find(e.call_id);
  if (it == calls_.end()) return;  // cannot happen for a log the engine wrote
  if (e.act == action::retire) {
    ++retired_;
    if (on_retire_ == on_retire::keep) {
      engine::apply(it->second, e);
      return;
    }
    // Only ended calls retire: they are in neither the ringing nor the live counts.
    const call_state& c = it->second;
    if (c.client_correlator) {
      auto s = starts_.find(start_key(mo_party(c.from, c.gateway), *c.client_correlator));
      if (s != starts_.end() && s->second == c.call_id) starts_.erase(s);
    }
    calls_.erase(it);
    return;
  }
  const bool was_ended = is_ended(it->second.status);
  const bool was_early = is_early(it->second.status);
  engine::apply(it->second, e);
  if (!was_ended && is_ended(it->second.status)) count_live(mo_party(it->second.from, it->second.gateway), false);
  if (was_early && !is_early(it->second.status)) track_ringing(it->second);
}

void call_table::restore(call_state c, event_seq last_seq) {
  if (auto it = calls_.find(c.call_id); it != calls_.end()) {  // given twice: the later replaces it
    const call_state& old = it->second;
    if (!is_ended(old.status)) count_live(mo_party(old.from, old.gateway), false);
    if (is_early(old.status)) {
      auto r = ringing_.find(old.to);
      if (r != ringing_.end()) {
        r->second.erase(old.start_seq);
        if (r->second.empty()) ringing_.erase(r);
      }
    }
    if (old.client_correlator) starts_.erase(start_key(mo_party(old.from, old.gateway), *old.client_correlator));
  }
  if (!is_ended(c.status)) count_live(mo_party(c.from, c.gateway), true);
  index(c);
  if (is_early(c.status)) track_ringing(c);
  calls_.insert_or_assign(c.call_id, std::move(c));
  if (last_seq > last_seq_) last_seq_ = last_seq;
}

std::optional<call_state> fold_call(const std::vector<event>& events, std::optional<call_state> base) {
  std::optional<call_state> c = std::move(base);
  for (const auto& e : events) {
    if (!e.accepted() || e.noop) continue;
    if (e.act == action::start) {
      c.emplace();
    } else if (!c || e.call_id != c->call_id) {
      continue;
    }
    engine::apply(*c, e);
  }
  return c;
}

}  // namespace engine
