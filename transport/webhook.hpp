#pragma once
// Webhooks (contract §13): every notification of every call, POSTed at least once to
// each --webhook URL, in log order per (URL, number), signed, retried with backoff.
// This header is the part without sockets: the URL, the body and signature formats, the
// retry schedule and the queue of deliveries one destination owes (delivery_queue, also
// push's). The dispatcher that reads the log and drives the HTTP client is dispatch.hpp.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/types.hpp"
#include "schemas/result.hpp"

namespace transport {

// An outbound destination's URL: http or https, a host (name or IP; IPv6 in brackets),
// an optional port, a path with an optional query. No user info, no fragment.
struct outbound_url {
  bool tls = false;
  std::string host;  // lower-cased, without brackets
  std::uint16_t port = 0;
  std::string target;  // path and query, at least "/"
  // scheme://host[:port]/path, without the query (which may hold a secret): for logs and
  // metric labels.
  std::string shown() const;
};
schemas::result<outbound_url, std::string> parse_outbound_url(std::string_view url);

// "<sequenceNumber>-<msisdn>": one notification to one number, the receiver's
// de-duplication key.
std::string webhook_id(engine::event_seq seq, std::string_view msisdn);
// {"id":…,"msisdn":…,"notification":<frame, unchanged>}
std::string webhook_body(engine::event_seq seq, std::string_view msisdn, std::string_view frame);
// The Yna-Signature header: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body);

// When a failed delivery is tried again: after min × 2^(failures-1), at most max, times a
// random factor in [1, 1.5) (jitter, so that many deliveries failed together do not all
// come back at once), never more than max. A delivery whose event is older than max_age
// is given up (dead) instead.
struct retry_policy {
  std::chrono::milliseconds min{1000};            // --webhook-retry-min
  std::chrono::milliseconds max{300'000};         // --webhook-retry-max
  std::chrono::milliseconds max_age{86'400'000};  // --webhook-max-age
};
// `unit` is a random number in [0, 1).
std::chrono::milliseconds retry_delay(const retry_policy& p, int failures, double unit);

// One delivery a dispatch plan (dispatch.hpp) owes for an event: its lane (deliveries of
// one lane go one at a time, in log order), where it goes, and its body.
struct planned_delivery {
  std::string lane;  // webhooks: the recipient number; push: the device
  std::string url;
  std::string body;
  std::string id;    // what the logs call it (webhooks: the Yna-Delivery id)
};

// The deliveries one destination owes, one lane per number (webhooks) or device (push):
// a lane's deliveries go one at a time, in log order; lanes go independently (a number
// whose deliveries fail does not hold up the others). Events are added in log order; the cursor is the last seq whose
// deliveries are all done (delivered or dead), which is what survives a restart. One
// thread.
class delivery_queue {
 public:
  using clock = std::chrono::steady_clock;
  struct delivery {
    engine::event_seq seq = 0;
    std::string lane;
    std::string url;
    std::string body;
    std::string id;
    engine::epoch_ms committed = 0;  // the event's time
    int failures = 0;
    clock::time_point next_try{};  // not before (after a failure)
  };

  // `start`: the cursor to begin from (events up to it are not owed).
  explicit delivery_queue(engine::event_seq start = 0) : read_upto_(start) {}

  // The deliveries of event `seq` (may be none: the cursor still moves past it). Events
  // must come in increasing seq order, after the last one added.
  void add(engine::event_seq seq, engine::epoch_ms committed, std::vector<planned_delivery> owed);

  // The next delivery due at `now` (the oldest event first), now in flight, or null. It
  // stays valid until delivered() or failed() is called for it.
  delivery* take(clock::time_point now);
  // When the next delivery not in flight is due; nullopt when none waits.
  std::optional<clock::time_point> next_due() const;

  void delivered(delivery* d);
  // A failed attempt: retried after retry_delay (true), or given up (false: dead) when its
  // event is older than max_age at `wall_now`.
  bool failed(delivery* d, clock::time_point now, engine::epoch_ms wall_now, const retry_policy& p, double unit);

  // Every delivery of the events up to it is done.
  engine::event_seq cursor() const;
  engine::event_seq read_upto() const noexcept { return read_upto_; }
  std::size_t pending() const noexcept { return pending_; }
  std::size_t in_flight() const noexcept { return in_flight_; }
  // The time of the oldest event with a delivery not done; nullopt when none.
  std::optional<engine::epoch_ms> oldest() const;

 private:
  void pop(delivery* d);

  std::unordered_map<std::string, std::deque<delivery>> lanes_;
  // Lanes whose head is not in flight, by when it is due, then its seq (then its lane).
  std::set<std::tuple<clock::time_point, engine::event_seq, std::string>> due_;
  std::map<engine::event_seq, std::pair<std::size_t, engine::epoch_ms>> open_;  // seq → deliveries not done, time
  engine::event_seq read_upto_ = 0;
  std::size_t pending_ = 0, in_flight_ = 0;
};

}  // namespace transport
