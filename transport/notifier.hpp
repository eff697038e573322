#pragma once
// Fan-out of notifications to WebSocket subscribers (contract §5). The hub is the
// reactor's event_listener: for every committed event it derives the notification
// (engine/notify.hpp) and hands it to every subscribed device
// that should receive it. Delivery itself is the subscriber's business (post to its
// I/O thread, bounded queue): the hub never blocks the reactor, and leaves the encoding
// of the frame to the I/O threads (pending_frame).
//
// Thread-safety: on_committed() runs on the reactor thread; subscribe() must run on the
// reactor thread too (engine::reactor::run_on_reactor), so a new subscriber sees every
// event after the committed seq it was given and none before; unsubscribe() may run on
// any thread. No Beast/Asio include.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/notify.hpp"
#include "engine/pushers.hpp"
#include "engine/reactor.hpp"

namespace transport {

using frame_ptr = std::shared_ptr<const std::string>;

// A live notification on its way to the sockets: derived on the reactor thread, its
// frame encoded once, by the first I/O thread that writes it (JSON encoding is no work
// for the reactor). Shared by every socket that receives it.
class pending_frame {
 public:
  pending_frame(engine::notification n, const std::string& base_path)
      : seq_(n.seq), n_(std::move(n)), base_path_(base_path) {}
  engine::event_seq seq() const { return seq_; }
  // Any thread; the first call encodes (and lets the notification go).
  frame_ptr get() {
    std::call_once(once_, [this] {
      frame_ = std::make_shared<const std::string>(engine::encode_notification(n_, base_path_));
      n_ = {};
    });
    return frame_;
  }

 private:
  std::once_flag once_;
  engine::event_seq seq_;
  engine::notification n_;
  const std::string& base_path_;  // the hub's: outlives every session
  frame_ptr frame_;
};

// A connected device (one WebSocket), as the hub sees it.
class subscriber {
 public:
  virtual ~subscriber() = default;
  // Called on the reactor thread: must only hand off, never block (nor encode: the
  // frame is encoded by whoever calls frame->get() first).
  virtual void deliver(std::shared_ptr<pending_frame> frame) = 0;

  std::string sub;
  std::string device_id;
  std::vector<std::string> msisdns;
};

class notification_hub final : public engine::event_listener {
 public:
  notification_hub(std::string base_path, engine::registry& metrics);

  void on_committed(const engine::event& e, const engine::call_state* after) override;

  // Reactor thread only.
  void subscribe(const std::shared_ptr<subscriber>& s);
  // Any thread. Safe to call for a subscriber that never subscribed.
  void unsubscribe(const subscriber* s);

  // The frames of the invitations still ringing the subscriber's numbers (reactor
  // thread, with the reactor's table), oldest first.
  std::vector<std::pair<engine::event_seq, frame_ptr>> ringing_invitations(const engine::call_table& table,
                                                                           const subscriber& s) const;

  const std::string& base_path() const { return base_path_; }
  std::size_t subscribers() const;
  // Whether the device (sub, device_id) has a socket subscribed for `msisdn`. Any thread.
  bool device_online(const std::string& msisdn, const std::string& sub, const std::string& device_id) const;
  // Whether any socket is subscribed for `msisdn` (contract §10: reachable). Any thread.
  bool number_online(std::string_view msisdn) const;

  // The push registrations as committed (contract §13): the recovered ones (before the
  // reactor runs), then every committed pusher event. Push delivery reads them here, so
  // it need not read the log while nobody is registered. Any thread.
  void set_pushers(engine::pusher_directory recovered);
  bool has_pushers() const;
  std::vector<engine::pusher> pushers_for(const std::string& msisdn) const;
  std::optional<engine::pusher> pusher_of(const std::string& sub, const std::string& device_id) const;

 private:
  std::string base_path_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<subscriber>>> by_msisdn_;
  std::unordered_map<const subscriber*, std::size_t> count_;  // subscribed sockets
  std::vector<std::shared_ptr<subscriber>> targets_;  // on_committed's scratch (reactor thread)
  mutable std::mutex pushers_mu_;
  engine::pusher_directory pushers_;
  engine::counter& published_;
  engine::counter& delivered_;
  engine::gauge& numbers_;
};

}  // namespace transport
