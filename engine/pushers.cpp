#include "engine/pushers.hpp"

#include <algorithm>

#include "engine/codec.hpp"
#include "engine/decide.hpp"

namespace engine {

const pusher* pusher_directory::find(std::string_view sub, std::string_view device_id) const {
  auto it = by_device_.find(key(std::string(sub), std::string(device_id)));
  return it == by_device_.end() ? nullptr : &it->second;
}

std::size_t pusher_directory::count(std::string_view sub) const {
  auto it = per_sub_.find(std::string(sub));
  return it == per_sub_.end() ? 0 : it->second;
}

std::vector<const pusher*> pusher_directory::for_number(std::string_view msisdn) const {
  std::vector<const pusher*> out;
  auto it = by_number_.find(std::string(msisdn));
  if (it == by_number_.end()) return out;
  for (const auto& k : it->second) out.push_back(&by_device_.at(k));
  return out;
}

std::vector<pusher_directory::key> pusher_directory::expired(epoch_ms now, std::size_t limit) const {
  std::vector<key> out;
  for (auto it = by_expiry_.begin(); it != by_expiry_.end() && std::get<0>(*it) <= now && out.size() < limit; ++it)
    out.emplace_back(std::get<1>(*it), std::get<2>(*it));
  return out;
}

void pusher_directory::erase(const key& k) {
  auto it = by_device_.find(k);
  if (it == by_device_.end()) return;
  const pusher& p = it->second;
  by_expiry_.erase({p.expires_at, k.first, k.second});
  for (const auto& m : p.msisdns) {
    auto n = by_number_.find(m);
    if (n == by_number_.end()) continue;
    n->second.erase(k);
    if (n->second.empty()) by_number_.erase(n);
  }
  if (auto s = per_sub_.find(k.first); s != per_sub_.end() && --s->second == 0) per_sub_.erase(s);
  by_device_.erase(it);
}

void pusher_directory::put(pusher p) {
  key k(p.sub, p.device_id);
  erase(k);
  by_expiry_.emplace(p.expires_at, k.first, k.second);
  for (const auto& m : p.msisdns) by_number_[m].insert(k);
  ++per_sub_[k.first];
  by_device_.emplace(std::move(k), std::move(p));
}

void pusher_directory::apply(const event& e) {
  if (!is_pusher_action(e.act) || !e.accepted() || e.noop || !e.push) return;
  if (e.act == action::register_pusher) {
    pusher p = *e.push;
    p.since = e.seq;
    put(std::move(p));
  } else {
    erase(key(e.push->sub, e.push->device_id));
  }
}

void pusher_directory::restore(pusher p) { put(std::move(p)); }

namespace {

event rejected(event e, reason_code why) {
  e.rejected = why;
  return e;
}

}  // namespace

event decide_pusher(const pusher_directory& dir, const command& cmd, epoch_ms now, const pusher_limits& limits) {
  event e = make_event(cmd, now);
  const bool by_engine = cmd.by_engine;
  e.actor_role = by_engine ? role::engine : role::stranger;
  if (cmd.input_error != reason_code::none) return rejected(std::move(e), cmd.input_error);

  if (cmd.act == action::register_pusher) {
    if (by_engine || !cmd.push) return rejected(std::move(e), reason_code::invalid_field);
    // A device of the token, which owns numbers to be woken for (a gateway owns none,
    // contract §11).
    if (cmd.who.device_id.empty() || cmd.who.gateway) return rejected(std::move(e), reason_code::forbidden);
    if (cmd.push->pushkey.empty() || cmd.push->pushkey.size() > limits.max_pushkey_bytes ||
        cmd.push->data.size() > limits.max_data_bytes || cmd.push->url.empty() || cmd.push->app_id.empty())
      return rejected(std::move(e), reason_code::invalid_field);
    const bool replaces = dir.find(cmd.who.sub, cmd.who.device_id) != nullptr;
    if (!replaces && limits.max_per_sub > 0 && dir.count(cmd.who.sub) >= limits.max_per_sub)
      return rejected(std::move(e), reason_code::too_many_pushers);
    pusher p = *cmd.push;
    p.sub = cmd.who.sub;
    p.device_id = cmd.who.device_id;
    p.msisdns = cmd.who.msisdns;
    p.since = 0;  // the event's seq, set when folded
    e.push = std::move(p);
    return e;
  }

  // unregister_pusher
  if (!cmd.push) return rejected(std::move(e), reason_code::invalid_field);
  pusher target;
  target.sub = cmd.push->sub;
  target.device_id = cmd.push->device_id;
  const pusher* have = dir.find(target.sub, target.device_id);
  if (by_engine) {
    const bool expired = cmd.reason && *cmd.reason == pusher_expired_reason;
    const bool refused = cmd.reason && *cmd.reason == pusher_rejected_reason;
    if (!have || (!expired && !refused) || (expired && have->expires_at > now) ||
        (refused && have->pushkey != cmd.push->pushkey))
      return rejected(std::move(e), reason_code::call_not_found);
    if (!have->msisdns.empty()) e.msisdn = have->msisdns.front();  // audited by number like the others
    e.push = std::move(target);
    return e;
  }
  if (target.sub != cmd.who.sub || target.device_id != cmd.who.device_id)
    return rejected(std::move(e), reason_code::forbidden);
  if (!have) e.noop = true;
  e.push = std::move(target);
  return e;
}

}  // namespace engine
