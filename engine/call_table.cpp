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

call_table::index_key call_table::key_of(const call_state& c) {
  return index_key{c.status, c.to, c.call_waiting};
}

bool call_table::same_index(const index_key& k, const call_state& c) {
  return k.status == c.status && k.to == c.to && k.call_waiting == c.call_waiting;
}

// Adds (sign +1) or removes (-1) the call from the indexes its state puts it in: live by MO
// party, ringing by MT, engaged by both numbers, waiting by MT.
void call_table::track(const call_state& c, const index_key& k, int sign) {
  auto bump = [sign](std::unordered_map<std::string, std::size_t>& m, const std::string& key) {
    if (sign > 0) {
      ++m[key];
      return;
    }
    auto it = m.find(key);
    if (it != m.end() && --it->second == 0) m.erase(it);
  };
  if (!is_ended(k.status)) {
    active_ = sign > 0 ? active_ + 1 : active_ - 1;
    bump(live_from_, mo_party(c.from, c.gateway));
  }
  if (is_early(k.status)) {
    if (sign > 0) {
      ringing_[k.to].emplace(c.start_seq, c.call_id);
    } else if (auto it = ringing_.find(k.to); it != ringing_.end()) {
      it->second.erase(c.start_seq);
      if (it->second.empty()) ringing_.erase(it);
    }
    if (k.call_waiting) bump(waiting_for_, k.to);
  }
  if (k.status == call_status::connected || k.status == call_status::hold) {
    if (c.gateway.empty()) bump(engaged_, c.from);
    bump(engaged_, k.to);
  }
}

std::vector<const call_state*> call_table::ringing(std::string_view msisdn) const {
  std::vector<const call_state*> out;
  auto it = ringing_.find(std::string(msisdn));
  if (it == ringing_.end()) return out;
  for (const auto& [seq, id] : it->second)
    if (const call_state* c = find(id)) out.push_back(c);
  return out;
}

namespace {
std::size_t count_in(const std::unordered_map<std::string, std::size_t>& m, std::string_view k) {
  auto it = m.find(std::string(k));
  return it == m.end() ? 0 : it->second;
}
}  // namespace

std::size_t call_table::ringing_count(std::string_view msisdn) const {
  auto it = ringing_.find(std::string(msisdn));
  return it == ringing_.end() ? 0 : it->second.size();
}

std::size_t call_table::live_from_count(std::string_view msisdn) const { return count_in(live_from_, msisdn); }
std::size_t call_table::engaged_count(std::string_view msisdn) const { return count_in(engaged_, msisdn); }
std::size_t call_table::waiting_count(std::string_view msisdn) const { return count_in(waiting_for_, msisdn); }

void call_table::apply(const event& e) {
  last_seq_ = e.seq;
  if (!e.accepted() || e.noop) return;
  if (is_pusher_action(e.act)) {
    pushers_.apply(e);
    return;
  }
  if (e.act == action::settings) {
    settings_.apply(e);
    return;
  }
  if (e.act == action::start) {
    call_state c;
    engine::apply(c, e);
    index(c);
    track(c, key_of(c), +1);  // a start ended at once (ringing cap) is neither live nor ringing
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
    // Only ended calls retire: they are in none of the counts.
    const call_state& c = it->second;
    if (c.client_correlator) {
      auto s = starts_.find(start_key(mo_party(c.from, c.gateway), *c.client_correlator));
      if (s != starts_.end() && s->second == c.call_id) starts_.erase(s);
    }
    calls_.erase(it);
    return;
  }
  const index_key before = key_of(it->second);
  engine::apply(it->second, e);
  if (!same_index(before, it->second)) {  // most events change nothing the indexes hold
    track(it->second, before, -1);
    track(it->second, key_of(it->second), +1);
  }
}

void call_table::restore(call_state c, event_seq last_seq) {
  if (auto it = calls_.find(c.call_id); it != calls_.end()) {  // given twice: the later replaces it
    const call_state& old = it->second;
    track(old, key_of(old), -1);
    if (old.client_correlator) starts_.erase(start_key(mo_party(old.from, old.gateway), *old.client_correlator));
  }
  index(c);
  track(c, key_of(c), +1);
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
