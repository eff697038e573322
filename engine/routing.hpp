#pragma once
// Where a call goes (contract §10): call waiting, forwarding and the engine's Busy. Pure
// like decide(): the decision reads the call, the numbers' settings and what the engine
// knows of each number through a routing_view, and is recorded as events, so a replay
// never decides again.
//
// route() runs on every accepted event that can change where a call rings (a /start, an
// MT's busy /end, the invite, answer and noAnswer timers) and returns the engine's own
// events that follow it in the same batch:
//   waiting  MT is busy, call waiting on, no call already waiting: the call rings it with
//            callWaiting (on the trigger's invitation or the divert's), MO told Waiting;
//   forward  the call leaves its MT for a forwarding target: MO told Forwarded with
//            diversionAddress and reason, the former MT too when it had been invited;
//   divert   the target is invited (diversionAddress), the invite/answer timers (and its
//            own noAnswer timer when it forwards on no answer) armed again;
//   release  the engine ends the call: Busy "user-busy" (busy, no call waiting, no CFB),
//            NotReachable "forwarding-limit" (a sixth diversion) or "forwarding-loop" (a
//            number seen before in the call, MO included).
// A forward is followed by the target's own decision (its CFU, CFNRc, busy), so one
// trigger may give a chain of forwards, ended by a divert or a release.
#include <string_view>
#include <vector>

#include "engine/types.hpp"

namespace engine {

// What routing reads besides the call. The reactor's reads its call table (settings,
// busy, waiting, pushers) and transport's sockets (reachable).
class routing_view {
 public:
  virtual ~routing_view() = default;
  // The number's settings (the defaults when it has none).
  virtual number_settings settings(std::string_view msisdn) const = 0;
  // In a Connected or Hold call, either side.
  virtual bool engaged(std::string_view msisdn) const = 0;
  // A call is ringing it with callWaiting already (or is being decided so).
  virtual bool has_waiting(std::string_view msisdn) const = 0;
  // Has a device: a notification socket open or a push registration.
  virtual bool reachable(std::string_view msisdn) const = 0;
};

// The reasons of contract §10.
inline constexpr std::string_view reason_unconditional = "unconditional";
inline constexpr std::string_view reason_user_busy = "user-busy";
inline constexpr std::string_view reason_no_answer = "no-answer";
inline constexpr std::string_view reason_unavailable = "unavailable";
inline constexpr std::string_view reason_forwarding_limit = "forwarding-limit";
inline constexpr std::string_view reason_forwarding_loop = "forwarding-loop";

// `trigger`: an event decide() returned (seq 0), decided on `before` (the call as it
// was; nullptr for a /start). Returns the engine's events to write right after it, in
// order (seq 0, time trigger.time); may change the trigger: `routed` (it tells nobody and
// ends nothing: the events after it decide), `call_waiting`, its timers. Nothing for
// rejected and noop events, nor for events that do not route.
std::vector<event> route(event& trigger, const call_state* before, const routing_view& view,
                         const timer_settings& timers);

}  // namespace engine
