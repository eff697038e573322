#pragma once
// Delivery from the log (contract §13): one dispatcher thread (`yna-dispatch`) reads the
// log in order for each of its plans from the plan's durable cursor, asks the plan what
// each event owes (planned_delivery: lane, URL, body), and sends it under the outbound
// rules (detail/outbound.hpp), retried with backoff, in order per lane. A slow or dead
// destination never slows requests or other plans. Plans: webhooks (webhook.hpp, one per
// --webhook URL) and push (push.hpp, one for every registered device). The Asio side is
// detail/log_dispatcher.cpp.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/event_store.hpp"
#include "engine/metrics.hpp"
#include "schemas/result.hpp"
#include "transport/webhook.hpp"

namespace transport {

// What to do with the events of the log, for one destination kind. Called on the
// dispatcher's thread only.
class dispatch_plan {
 public:
  virtual ~dispatch_plan() = default;
  // The cursor's name in the log (e.g. "webhook:https://h/p"); also its identity.
  virtual const std::string& cursor_name() const = 0;
  // The `destination` label of its metrics, and its name in the process log.
  virtual const std::string& label() const = 0;
  virtual const retry_policy& retry() const = 0;
  // What the event owes, in log order (every acknowledged event, once per start-up).
  virtual void plan(const engine::event& e, std::vector<planned_delivery>& out) = 0;
  // The headers of one attempt (content type, signatures), made when it is sent.
  virtual std::vector<std::pair<std::string, std::string>> headers(const delivery_queue::delivery& d) = 0;
  // A 2xx answer's body (push: the gateway's rejected pushkeys).
  virtual void delivered(const delivery_queue::delivery&, const std::string& /*answer*/) {}
  // A seq up to which the plan owes nothing, whatever the events: the reader moves the
  // cursor there without reading them (push while nobody is registered). nullopt: read.
  virtual std::optional<engine::event_seq> owes_nothing_up_to() { return std::nullopt; }
};

struct dispatcher_settings {
  std::chrono::milliseconds timeout{5000};  // one attempt, connect to answer (--webhook-timeout)
  std::size_t max_pending = 4096;           // deliveries read ahead per plan (--webhook-max-pending)
  std::size_t concurrency = 4;              // connections per plan (--webhook-concurrency)
  std::vector<std::string> outbound_allow;  // --outbound-allow
  std::string outbound_ca;                  // --outbound-ca
};

class log_dispatcher {
 public:
  // Loads the plans' cursors: a plan seen for the first time starts at the log's end (it
  // is owed what comes after it was added). A cursor whose name starts with one of
  // `owned_prefixes` and that no plan has any more is removed (it would hold archiving
  // back). The message says what is wrong.
  static schemas::result<std::unique_ptr<log_dispatcher>, std::string> create(
      engine::delivery_source& log, std::vector<std::unique_ptr<dispatch_plan>> plans, dispatcher_settings settings,
      const std::vector<std::string>& owned_prefixes, engine::registry& metrics);
  ~log_dispatcher();
  log_dispatcher(const log_dispatcher&) = delete;
  log_dispatcher& operator=(const log_dispatcher&) = delete;

  void start();
  // New events are acknowledged: wakes an idle reader. Any thread; cheap (one atomic
  // exchange unless the dispatcher sleeps).
  void notify();
  // Stops the thread and saves the cursors. Deliveries in flight are abandoned (and sent
  // again after the next start: at least once).
  void stop();

 private:
  struct impl;
  explicit log_dispatcher(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace transport
