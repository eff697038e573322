#pragma once
// Fan-out of notifications to WebSocket subscribers (contract §5). The hub is the
// reactor's event_listener: for every committed event it derives the notification
// (engine/notify.hpp), encodes the frame once, and hands it to every subscribed device
// that should receive it. Delivery itself is the subscriber's business (post to its
// I/O thread, bounded queue): the hub never blocks the reactor.
//
// Thread-safety: on_committed() runs on the reactor thread; subscribe() must run on the
// reactor thread too (engine::reactor::run_on_reactor), so a new subscriber sees every
// event after the committed seq it was given and none before; unsubscribe() may run on
// any thread. No Beast/Asio include.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/metrics.hpp"
#include "engine/notify.hpp"
#include "engine/reactor.hpp"

namespace transport {

using frame_ptr = std::shared_ptr<const std::string>;

// A connected device (one WebSocket), as the hub sees it.
class subscriber {
 public:
  virtual ~subscriber() = default;
  // Called on the reactor thread: must only hand off, never block.
  virtual void deliver(engine::event_seq seq, frame_ptr frame) = 0;

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

 private:
  std::string base_path_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::weak_ptr<subscriber>>> by_msisdn_;
  std::unordered_map<const subscriber*, std::size_t> count_;  // subscribed sockets
  engine::counter& published_;
  engine::counter& delivered_;
  engine::gauge& numbers_;
};

}  // namespace transport
