#pragma once
// Events and notifications as short labels for the human tables, through the
// engine's own names (engine::to_string), so new actions, roles and statuses show up
// without changes here.
#include <string>
#include <string_view>

#include "engine/notify.hpp"
#include "engine/types.hpp"

namespace cli {

// "MO 14250000001 phone-a", "stranger 14250000009", "engine" (timer expiries).
std::string actor_label(const engine::event& e);
// The action's name: "start", "acceptHold", "timeout", …
std::string endpoint_label(const engine::event& e);
// "accepted", "noop", or the reasonCode of a rejection ("OFFER_PENDING").
std::string outcome_label(const engine::event& e);
// "Ringing -> Connected", or "Ringing" when nothing changed, or "-" for unknown calls.
std::string status_label(const engine::event& e);
// The payload besides the SDP: "reason=busy conference=x clientCorrelator=y"; "" when none.
std::string payload_label(const engine::event& e);
// The timers of contract §7 an event touches: "expired answer (deadline …)" for an
// expiry, "arms invite at …, answer at …" for an event that arms some; "" otherwise.
std::string timers_label(const engine::event& e);
// One line about a session description: its s= name, each m= line (media, port,
// proto, formats) with its direction attribute, and its size:
// "s=a audio 49170 RTP/AVP 0 sendonly (98 B)".
std::string sdp_summary(std::string_view sdp);
// "invitation to 14250000002" / "status Connected [180] reason=busy to 14250000001,
// 14250000002 except device phone-b".
std::string notification_label(const engine::notification& n);

}  // namespace cli
