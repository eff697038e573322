#include "tools/cli/describe.hpp"

#include <fmt/format.h>

#include "tools/cli/common.hpp"

namespace cli {

std::string actor_label(const engine::event& e) {
  if (e.actor_role == engine::role::engine) return "engine";
  std::string s(engine::to_string(e.actor_role));
  if (!e.msisdn.empty()) s += " " + e.msisdn;
  if (!e.device_id.empty()) s += " " + e.device_id;
  else if (!e.sub.empty()) s += " sub=" + e.sub;
  return s;
}

std::string endpoint_label(const engine::event& e) { return std::string(engine::to_string(e.act)); }

std::string outcome_label(const engine::event& e) {
  if (!e.accepted()) return std::string(schemas::to_string(e.rejected));
  return e.noop ? "noop" : "accepted";
}

std::string status_label(const engine::event& e) {
  if (!e.status_before && !e.status_after) return "-";
  if (!e.status_after || (e.status_before && *e.status_before == *e.status_after && !e.accepted()))
    return std::string(engine::to_string(*e.status_before));
  if (!e.status_before) return "-> " + std::string(engine::to_string(*e.status_after));
  return fmt::format("{} -> {}", engine::to_string(*e.status_before), engine::to_string(*e.status_after));
}

std::string payload_label(const engine::event& e) {
  std::string s;
  auto add = [&](std::string_view k, const std::optional<std::string>& v) {
    if (!v) return;
    if (!s.empty()) s += ' ';
    s += fmt::format("{}={}", k, *v);
  };
  add("reason", e.reason);
  add("conference", e.conference);
  add("clientCorrelator", e.client_correlator);
  if (!e.gateway.empty()) add("gateway", e.gateway);
  if (e.identity) {  // contract §11: how the caller was verified, and why not
    std::string v(schemas::passport::to_string(e.identity->status));
    if (e.identity->attest) v += std::string("/") + e.identity->attest;
    if (!e.identity->failure.empty()) v += "(" + e.identity->failure + ")";
    add("verification", v);
  }
  // Contract §10: where the call went, and the settings a PUT set.
  if (e.act == engine::action::forward) add("forwarded", e.diversion + " -> " + e.to);
  if (e.act == engine::action::divert) add("invites", e.to + (e.diversion.empty() ? "" : " (diversion " + e.diversion + ")"));
  if (e.call_waiting) add("callWaiting", std::string("true"));
  if (e.routed) add("gave-way", std::string("to the engine's routing"));
  if (!e.transfer_to.empty()) add("transferredTo", e.transfer_to);
  if (!e.transfer_of.empty()) add("transferOf", e.transfer_of + (e.diversion.empty() ? "" : " (from " + e.diversion + ")"));
  if (!e.step.empty()) add("step", e.step);
  if (!e.meeting_uri.empty()) add("meetingUri", e.meeting_uri);
  if (e.accept) add("accept", std::string(*e.accept ? "true" : "false"));
  if (e.settings) {
    const auto& st = *e.settings;
    std::string v = st.call_waiting ? "waiting on" : "waiting off";
    if (st.unconditional) v += " cfu=" + *st.unconditional;
    if (st.busy) v += " cfb=" + *st.busy;
    if (st.no_answer) v += fmt::format(" cfnr={}/{}s", *st.no_answer, st.no_answer_timeout_s);
    if (st.not_reachable) v += " cfnrc=" + *st.not_reachable;
    add("settings", v);
  }
  return s;
}

std::string timers_label(const engine::event& e) {
  std::string s;
  if (e.timer) s = fmt::format("expired {} (deadline {})", engine::to_string(*e.timer), format_time(e.timer_deadline));
  std::string arms;
  for (int i = 0; i < engine::timer_kind_count; ++i) {
    if (!e.arms.slot[i]) continue;
    arms += arms.empty() ? "arms " : ", ";
    arms += fmt::format("{} at {}", engine::to_string(static_cast<engine::timer_kind>(i)), format_time(*e.arms.slot[i]));
  }
  if (!s.empty() && !arms.empty()) s += "; ";
  return s + arms;
}

std::string sdp_summary(std::string_view sdp) {
  std::string name, media;
  std::size_t pos = 0;
  while (pos < sdp.size()) {
    std::size_t end = sdp.find('\n', pos);
    if (end == std::string_view::npos) end = sdp.size();
    std::string_view line = sdp.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() < 2 || line[1] != '=') continue;
    const std::string_view value = line.substr(2);
    if (line[0] == 's') {
      name = value;
    } else if (line[0] == 'm') {
      if (!media.empty()) media += " |";
      media += " " + std::string(value);
    } else if (line[0] == 'a' && (value == "sendonly" || value == "recvonly" || value == "inactive" ||
                                  value == "sendrecv")) {
      media += " " + std::string(value);  // the direction of the session (before any m=) or of the last m=
    }
  }
  return fmt::format("s={}{} ({} B)", name, media, sdp.size());
}

std::string notification_label(const engine::notification& n) {
  if (n.type == engine::notification_type::invitation)
    return "invitation to " + n.to + (n.diversion.empty() ? "" : " (diverted by " + n.diversion + ")") +
           (n.call_waiting ? " [callWaiting]" : "");
  std::string s = "status " + n.status;
  if (n.response_code) s += fmt::format(" [{}]", *n.response_code);
  if (n.reason) s += " reason=" + *n.reason;
  if (!n.diversion.empty() && n.type == engine::notification_type::status) s += " diversion=" + n.diversion;
  s += " to " + engine::mo_party(n.from, n.gateway);
  if (!n.mo_only) s += ", " + n.to;
  if (!n.exclude_device.empty()) s += " except device " + n.exclude_device;
  return s;
}

}  // namespace cli
