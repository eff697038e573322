#include "transport/notifier.hpp"

#include <algorithm>

namespace transport {

notification_hub::notification_hub(std::string base_path, engine::registry& metrics)
    : base_path_(std::move(base_path)),
      published_(metrics.get_counter("yna_notifications_total", "Notifications derived from committed events")),
      delivered_(metrics.get_counter("yna_notification_deliveries_total",
                                     "Notification frames handed to WebSocket sessions (live)")),
      numbers_(metrics.get_gauge("yna_ws_subscribed_numbers",
                                 "Numbers with a subscribed notification socket (bounded by the sockets)")) {}

void notification_hub::on_committed(const engine::event& e, const engine::call_state*) {
  if (engine::is_pusher_action(e.act)) {
    std::lock_guard lk(pushers_mu_);
    pushers_.apply(e);
    return;
  }
  auto n = engine::derive_notification(e);
  if (!n) return;
  published_.inc();
  // The sockets that receive it (a member, so its capacity is reused: reactor thread only).
  targets_.clear();
  {
    std::lock_guard lk(mu_);
    for (const auto& number : n->recipients()) {
      auto it = by_msisdn_.find(number);
      if (it == by_msisdn_.end()) continue;
      auto& subs = it->second;
      for (auto w = subs.begin(); w != subs.end();) {
        auto s = w->lock();
        if (!s) {
          w = subs.erase(w);
          continue;
        }
        ++w;
        if (!n->is_for(s->sub, s->device_id, s->msisdns)) continue;
        // A device holding both numbers of a call is told once.
        if (std::find(targets_.begin(), targets_.end(), s) == targets_.end()) targets_.push_back(std::move(s));
      }
      if (subs.empty()) by_msisdn_.erase(it);
    }
    numbers_.set(static_cast<std::int64_t>(by_msisdn_.size()));
  }
  if (targets_.empty()) return;
  auto frame = std::make_shared<pending_frame>(std::move(*n), base_path_);
  for (auto& s : targets_) s->deliver(frame);
  delivered_.inc(targets_.size());
  targets_.clear();  // drops the references now, not at the next event
}

void notification_hub::subscribe(const std::shared_ptr<subscriber>& s) {
  std::lock_guard lk(mu_);
  for (const auto& m : s->msisdns) by_msisdn_[m].push_back(s);
  count_[s.get()] = s->msisdns.size();
  numbers_.set(static_cast<std::int64_t>(by_msisdn_.size()));
}

void notification_hub::unsubscribe(const subscriber* s) {
  std::lock_guard lk(mu_);
  if (count_.erase(s) == 0) return;
  for (const auto& m : s->msisdns) {
    auto it = by_msisdn_.find(m);
    if (it == by_msisdn_.end()) continue;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [s](const std::weak_ptr<subscriber>& w) {
                             auto p = w.lock();
                             return !p || p.get() == s;
                           }),
            v.end());
    if (v.empty()) by_msisdn_.erase(it);
  }
  numbers_.set(static_cast<std::int64_t>(by_msisdn_.size()));
}

std::vector<std::pair<engine::event_seq, frame_ptr>> notification_hub::ringing_invitations(
    const engine::call_table& table, const subscriber& s) const {
  std::vector<std::pair<engine::event_seq, frame_ptr>> out;
  for (const auto& m : s.msisdns)
    for (const engine::call_state* c : table.ringing(m)) {
      const auto n = engine::invitation_for(*c);
      if (n.is_for(s.sub, s.device_id, s.msisdns))
        out.emplace_back(n.seq, std::make_shared<const std::string>(engine::encode_notification(n, base_path_)));
    }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
            out.end());
  return out;
}

bool notification_hub::device_online(const std::string& msisdn, const std::string& sub,
                                     const std::string& device_id) const {
  std::lock_guard lk(mu_);
  auto it = by_msisdn_.find(msisdn);
  if (it == by_msisdn_.end()) return false;
  for (const auto& w : it->second)
    if (auto s = w.lock(); s && s->sub == sub && s->device_id == device_id) return true;
  return false;
}

bool notification_hub::number_online(std::string_view msisdn) const {
  std::lock_guard lk(mu_);
  auto it = by_msisdn_.find(std::string(msisdn));
  if (it == by_msisdn_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [](const auto& w) { return !w.expired(); });
}

void notification_hub::set_pushers(engine::pusher_directory recovered) {
  std::lock_guard lk(pushers_mu_);
  pushers_ = std::move(recovered);
}

bool notification_hub::has_pushers() const {
  std::lock_guard lk(pushers_mu_);
  return pushers_.size() > 0;
}

std::vector<engine::pusher> notification_hub::pushers_for(const std::string& msisdn) const {
  std::vector<engine::pusher> out;
  std::lock_guard lk(pushers_mu_);
  for (const engine::pusher* p : pushers_.for_number(msisdn)) out.push_back(*p);
  return out;
}

std::optional<engine::pusher> notification_hub::pusher_of(const std::string& sub, const std::string& device_id) const {
  std::lock_guard lk(pushers_mu_);
  const engine::pusher* p = pushers_.find(sub, device_id);
  return p ? std::optional<engine::pusher>(*p) : std::nullopt;
}

std::size_t notification_hub::subscribers() const {
  std::lock_guard lk(mu_);
  return count_.size();
}

}  // namespace transport
