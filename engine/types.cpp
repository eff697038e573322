#include "engine/types.hpp"

#include <array>

namespace engine {

namespace {

template <class E, std::size_t N>
std::optional<E> parse_in(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

template <class E, std::size_t N>
std::string_view name_in(const std::array<std::string_view, N>& names, E v) {
  const auto i = static_cast<std::size_t>(v);
  return i < N ? names[i] : std::string_view("?");
}

constexpr std::array<std::string_view, 15> status_names{
    "Initial",  "InProgress", "Proceeding", "Ringing", "Connected",    "Hold",  "Terminated",
    "SessionCancelled", "Declined", "Busy", "NoAnswer", "NotReachable", "Failed", "Waiting", "Forwarded"};

constexpr std::array<std::string_view, action_count> action_names{
    "start", "inProgress", "proceeding", "ringing", "connected", "hold",
    "acceptHold", "resume", "acceptResume", "renegotiate", "end", "timeout", "retire",
    "registerPusher", "unregisterPusher", "settings", "waiting", "forward", "divert", "release",
    "transfer", "upgradeToMeeting", "acceptUpgrade", "upgrade"};

constexpr std::array<std::string_view, 4> role_names{"MO", "MT", "stranger", "engine"};
constexpr std::array<std::string_view, 4> offer_names{"hold", "resume", "renegotiate", "upgrade"};
constexpr std::array<std::string_view, timer_kind_count> timer_names{"invite", "answer", "offer", "maxDuration",
                                                                     "retire", "noAnswer"};
constexpr std::array<std::string_view, timer_kind_count> expiry_reasons{
    "invite-timeout", "answer-timeout", "offer-timeout", "max-duration", "retention", "no-answer-forwarding"};

}  // namespace

std::string_view to_string(call_status s) noexcept { return name_in(status_names, s); }
std::optional<call_status> parse_call_status(std::string_view s) noexcept {
  return parse_in<call_status>(status_names, s);
}

bool is_early(call_status s) noexcept {
  return s == call_status::initial || s == call_status::in_progress || s == call_status::proceeding ||
         s == call_status::ringing || s == call_status::waiting || s == call_status::forwarded;
}

bool is_ended(call_status s) noexcept {
  switch (s) {
    case call_status::terminated:
    case call_status::session_cancelled:
    case call_status::declined:
    case call_status::busy:
    case call_status::no_answer:
    case call_status::not_reachable:
    case call_status::failed:
      return true;
    default:
      return false;
  }
}

std::string_view to_string(action a) noexcept { return name_in(action_names, a); }
std::optional<action> parse_action(std::string_view s) noexcept { return parse_in<action>(action_names, s); }
std::string_view to_string(role r) noexcept { return name_in(role_names, r); }
std::optional<role> parse_role(std::string_view s) noexcept { return parse_in<role>(role_names, s); }
std::string_view to_string(offer_kind k) noexcept { return name_in(offer_names, k); }
std::optional<offer_kind> parse_offer_kind(std::string_view s) noexcept {
  return parse_in<offer_kind>(offer_names, s);
}

std::string_view to_string(timer_kind k) noexcept { return name_in(timer_names, k); }
std::optional<timer_kind> parse_timer_kind(std::string_view s) noexcept {
  return parse_in<timer_kind>(timer_names, s);
}
std::string_view expiry_reason(timer_kind k) noexcept { return name_in(expiry_reasons, k); }

bool deadlines::any() const noexcept {
  for (const auto& d : slot)
    if (d) return true;
  return false;
}

}  // namespace engine
