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

// Whether a device has a notification socket open for `msisdn`. Any thread.
using device_online_fn = std::function<bool(const std::string& msisdn, const std::string& sub, const std::string& device)>;
// A gateway refused this registration's pushkey. Called on the dispatcher's thread.
using pushkey_rejected_fn = std::function<void(const engine::pusher&)>;

// `registered`: the registrations as of event `as_of` (the recovered fold); pusher events
// after it are folded in as they are read.
std::unique_ptr<dispatch_plan> make_push_plan(engine::pusher_directory registered, engine::event_seq as_of,
                                              push_settings settings, device_online_fn online,
                                              pushkey_rejected_fn rejected);

// The body of one push: {"notification": {"event_id", "type", "sender", "prio", "content":
// <the frame without its sdp>, "devices": [{"app_id", "pushkey", "data"}]}}.
std::string matrix_push_body(const engine::notification& n, std::string_view type, const engine::pusher& p,
                             std::string_view base_path);

}  // namespace transport
