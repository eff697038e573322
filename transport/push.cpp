#include "transport/push.hpp"

#include <chrono>
#include <map>
#include <utility>

#include "engine/clock.hpp"
#include "engine/types.hpp"
#include "schemas/api.hpp"
#include "schemas/json_writer.hpp"

namespace transport {

namespace {

constexpr std::size_t max_ringing_tracked = 100'000;  // calls whose pushed devices are remembered

std::string lane_of(const std::string& sub, const std::string& device) {
  std::string l = sub;
  l.push_back('\0');
  l += device;
  return l;
}

class push_plan final : public dispatch_plan {
 public:
  push_plan(push_registry r, push_settings s) : reg_(std::move(r)), s_(std::move(s)) {}

  const std::string& cursor_name() const override { return name_; }
  const std::string& label() const override { return label_; }
  const retry_policy& retry() const override { return s_.retry; }

  std::optional<engine::event_seq> owes_nothing_up_to() override {
    // The seq first, then the registrations (which include its pusher events): nothing
    // registered then means nothing owed up to it.
    const engine::event_seq seq = reg_.committed();
    if (!ringing_.empty() || reg_.any()) return std::nullopt;
    return seq;
  }

  void plan(const engine::event& e, std::vector<planned_delivery>& out) override {
    auto n = engine::derive_notification(e);
    if (!n) return;
    if (n->type == engine::notification_type::invitation) {
      if (s_.ring_for.count() > 0 && engine::system_clock{}.now() - e.time > s_.ring_for.count()) return;
      std::vector<std::pair<std::string, std::string>> pushed;
      for (const engine::pusher& p : reg_.for_number(n->to)) {
        if (!n->is_for(p.sub, p.device_id, p.msisdns)) continue;
        if (reg_.online(n->to, p.sub, p.device_id)) continue;
        out.push_back(delivery_for(*n, "yna.call.invite", p));
        pushed.emplace_back(p.sub, p.device_id);
      }
      if (pushed.empty()) return;
      if (ringing_.size() >= max_ringing_tracked) ringing_.erase(ringing_.begin());
      ringing_[n->seq] = {n->call_id, std::move(pushed)};
      by_call_[n->call_id] = n->seq;
      return;
    }
    auto c = by_call_.find(n->call_id);
    if (c == by_call_.end()) return;
    const auto status = engine::parse_call_status(n->status);
    // Still ringing; but Forwarded (contract §10) stops the devices of the MT it left.
    if (status && engine::is_early(*status) && *status != engine::call_status::forwarded) return;
    auto r = ringing_.find(c->second);
    by_call_.erase(c);
    if (r == ringing_.end()) return;
    // Owed like any status (contract §5): not to the device that caused it (the one that
    // answered), nor to one whose socket is open by now.
    for (const auto& [sub, device] : r->second.second) {
      const auto p = reg_.find(sub, device);
      if (!p || !n->is_for(p->sub, p->device_id, p->msisdns)) continue;
      if (reg_.online(n->to, p->sub, p->device_id)) continue;
      out.push_back(delivery_for(*n, "yna.call.status", *p));
    }
    ringing_.erase(r);
  }

  std::vector<std::pair<std::string, std::string>> headers(const delivery_queue::delivery&) override {
    return {{"Content-Type", "application/json"}};
  }

  void delivered(const delivery_queue::delivery& d, const std::string& answer) override {
    const auto zero = d.lane.find('\0');
    if (zero == std::string::npos) return;
    const auto p = reg_.find(d.lane.substr(0, zero), d.lane.substr(zero + 1));
    if (!p) return;
    for (const auto& k : schemas::decode_rejected_pushkeys(answer))
      if (k == p->pushkey) reg_.rejected(*p);
  }

 private:
  planned_delivery delivery_for(const engine::notification& n, std::string_view type, const engine::pusher& p) {
    planned_delivery d;
    d.lane = lane_of(p.sub, p.device_id);
    d.url = p.url;
    d.body = matrix_push_body(n, type, p, s_.base_path);
    d.id = "push " + std::to_string(n.seq) + " to device " + p.device_id;
    return d;
  }

  push_registry reg_;
  push_settings s_;
  std::string name_{push_cursor_name}, label_{"push"};
  // Invitations pushed, by their seq: the call and the devices, told again when it stops ringing.
  std::map<engine::event_seq, std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> ringing_;
  std::map<std::string, engine::event_seq> by_call_;
};

}  // namespace

std::string matrix_push_body(const engine::notification& n, std::string_view type, const engine::pusher& p,
                             std::string_view base_path) {
  engine::notification content = n;
  content.sdp.reset();  // a push carries no SDP: the app fetches the call when it wakes
  if (content.identity) content.identity->passport.clear();  // nor the PASSporT (push payloads are small)
  schemas::json_writer w(512 + p.pushkey.size() + p.data.size());
  w.begin_object().key("notification").begin_object();
  w.field("event_id", std::string_view(std::to_string(n.seq)));
  w.field("type", type);
  w.field("sender", std::string_view(schemas::tel_uri(n.from)));
  w.field("prio", type == "yna.call.invite" ? "high" : "low");
  w.key("content").raw(engine::encode_notification(content, base_path));
  w.key("devices").begin_array().begin_object();
  w.field("app_id", std::string_view(p.app_id)).field("pushkey", std::string_view(p.pushkey));
  w.key("data").raw(p.data.empty() ? std::string_view("{}") : std::string_view(p.data));
  w.end_object().end_array();
  w.end_object().end_object();
  return w.take();
}

std::unique_ptr<dispatch_plan> make_push_plan(push_registry registry, push_settings settings) {
  return std::make_unique<push_plan>(std::move(registry), std::move(settings));
}

}  // namespace transport
