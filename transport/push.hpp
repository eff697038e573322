#pragma once
// Push (contract §13): the dispatch plan that wakes devices with no notification socket
// open. For an invitation to a number, each device registered for it (a pusher of the
// fold) whose socket is not open gets a POST to its gateway in the Matrix Push Gateway
// format (type "yna.call.invite", the frame without its SDP); when that call then stops
// ringing (answered, declined, cancelled, timed out), the same devices get the status
// that stopped it (type "yna.call.status"). A `rejected` pushkey in a gateway's answer
// removes the registration (an event, through the reactor). Lanes are devices.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/notify.hpp"
#include "engine/pushers.hpp"
#include "transport/dispatch.hpp"

namespace transport {

inline constexpr std::string_view push_cursor_name = "push";

struct push_settings {
  // A push is worth something only while the call rings: retried for a minute at most.
  retry_policy retry{std::chrono::milliseconds(1000), std::chrono::milliseconds(4000), std::chrono::milliseconds(60'000)};
  // An invitation older than this when it is read (a restart long after) is not pushed:
  // its call no longer rings (--answer-timeout; 0: no bound).
  std::chrono::milliseconds ring_for{90'000};
  std::string base_path;
};

// What push delivery asks of the rest of the engine (the notification hub and the
// reactor, in yna-engine). Any thread.
struct push_registry {
  // The registrations as committed (the hub's copy, updated as pusher events commit):
  // whether there is any; those of a number; one device's.
  std::function<bool()> any;
  std::function<std::vector<engine::pusher>(const std::string& msisdn)> for_number;
  std::function<std::optional<engine::pusher>(const std::string& sub, const std::string& device)> find;
  // Whether a device has a notification socket open for `msisdn`.
  std::function<bool(const std::string& msisdn, const std::string& sub, const std::string& device)> online;
  // Every event up to it has been committed and published (the registrations above
  // include its pusher events).
  std::function<engine::event_seq()> committed;
  // A gateway refused this registration's pushkey (called on the dispatcher's thread).
  std::function<void(const engine::pusher&)> rejected;
};

// Push reads the registrations as they are now (a device registered after an invitation
// that still rings is pushed it too). While nobody is registered and no pushed call still
// rings, it owes nothing and reads nothing.
std::unique_ptr<dispatch_plan> make_push_plan(push_registry registry, push_settings settings);

// The body of one push: {"notification": {"event_id", "type", "sender", "prio", "content":
// <the frame without its sdp>, "devices": [{"app_id", "pushkey", "data"}]}}.
std::string matrix_push_body(const engine::notification& n, std::string_view type, const engine::pusher& p,
                             std::string_view base_path);

}  // namespace transport
