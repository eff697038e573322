#pragma once
// The webhook dispatcher (contract §13): reads the log in order from each destination's
// durable cursor, derives every notification of every event (engine::derive_notification,
// as the WebSocket does) and POSTs one delivery per recipient number, signed, retried with
// backoff, in log order per (URL, number). Its own thread (`yna-webhooks`), its own
// connections: a slow or dead destination never slows requests or other destinations.
// The implementation (Asio, Beast) is detail/webhook_dispatcher.cpp.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/event_store.hpp"
#include "engine/metrics.hpp"
#include "schemas/result.hpp"
#include "transport/webhook.hpp"

namespace transport {

struct webhook_settings {
  std::vector<std::string> urls;      // --webhook
  std::string secret;                 // the contents of --webhook-secret-file
  retry_policy retry;                 // --webhook-retry-min/-max, --webhook-max-age
  std::chrono::milliseconds timeout{5000};  // --webhook-timeout: one attempt, connect to answer
  std::size_t max_pending = 4096;     // --webhook-max-pending: deliveries read ahead, per destination
  std::size_t concurrency = 4;        // --webhook-concurrency: connections per destination
  std::vector<std::string> outbound_allow;  // --outbound-allow
  std::string outbound_ca;            // --outbound-ca
  std::string base_path;              // callObjectRef in the frames
};

class webhook_dispatcher {
 public:
  // Checks every URL (usable, host allowed) and loads the cursors: a destination seen for
  // the first time starts at the log's end (it is owed what comes after it was added); a
  // cursor of a destination no longer configured is removed (it would hold archiving back).
  // The message says what is wrong.
  static schemas::result<std::unique_ptr<webhook_dispatcher>, std::string> create(engine::delivery_source& log,
                                                                                  webhook_settings settings,
                                                                                  engine::registry& metrics);
  ~webhook_dispatcher();
  webhook_dispatcher(const webhook_dispatcher&) = delete;
  webhook_dispatcher& operator=(const webhook_dispatcher&) = delete;

  // Starts the thread.
  void start();
  // New events are acknowledged: wakes an idle reader. Any thread; cheap (one atomic
  // exchange unless the dispatcher sleeps).
  void notify();
  // Stops the thread and saves the cursors. Deliveries in flight are abandoned (and
  // delivered again after the next start: at least once).
  void stop();

 private:
  struct impl;
  explicit webhook_dispatcher(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace transport
