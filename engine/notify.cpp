#include "engine/notify.hpp"

#include <algorithm>

#include "schemas/api.hpp"
#include "schemas/json_writer.hpp"

namespace engine {

bool notification::is_for(std::string_view sub, std::string_view device_id,
                          const std::vector<std::string>& msisdns) const {
  auto owns = [&](const std::string& n) { return std::find(msisdns.begin(), msisdns.end(), n) != msisdns.end(); };
  const std::string mo = mo_party(from, gateway);
  const bool party = type == notification_type::invitation ? owns(to) : mo_only ? owns(mo) : (owns(mo) || owns(to));
  if (!party) return false;
  const bool causing_device = !exclude_device.empty() && device_id == exclude_device && sub == exclude_sub;
  return !causing_device;
}

std::vector<std::string> notification::recipients() const {
  if (type == notification_type::invitation) return {to};
  if (mo_only) return {mo_party(from, gateway)};
  return {mo_party(from, gateway), to};
}

std::optional<notification> derive_notification(const event& e) {
  if (!e.accepted() || e.noop || !e.status_after) return std::nullopt;
  // A retirement leaves memory, not the call; pusher events notify nobody (contract §10).
  if (e.act == action::retire || is_pusher_action(e.act) || e.act == action::settings || e.routed)
    return std::nullopt;
  if (e.act == action::timeout && e.timer == timer_kind::no_answer) return std::nullopt;  // diverted nothing
  notification n;
  n.seq = e.seq;
  n.time = e.time;
  n.call_id = e.call_id;
  n.from = e.from;
  n.to = e.to;
  n.gateway = e.gateway;
  n.originator_name = e.mo_name;
  n.receiver_name = e.mt_name;
  n.exclude_sub = e.sub;
  n.exclude_device = e.device_id;
  n.sdp = e.sdp;
  n.status = std::string(to_string(*e.status_after));
  switch (e.act) {
    case action::start:
      if (is_ended(*e.status_after)) {  // ended at once by the ringing cap: MO is told why
        n.mo_only = true;
        n.exclude_sub.clear();  // caused by the engine: the requesting device is told too
        n.exclude_device.clear();
        n.sdp.reset();  // MO's own offer: nothing to send back
        n.reason = e.reason;
        break;
      }
      n.type = notification_type::invitation;
      n.status.clear();
      n.identity = e.identity;
      n.call_waiting = e.call_waiting;
      n.diversion = e.diversion;  // a transfer taken up: the transferring party
      break;
    case action::divert:  // the diversion's invitation, to the new MT
      n.type = notification_type::invitation;
      n.status.clear();
      n.identity = e.identity;
      n.call_waiting = e.call_waiting;
      n.diversion = e.diversion;
      break;
    case action::forward:  // MO, and the MT it left (its devices stop ringing)
      n.to = e.diversion;
      n.diversion = e.diversion;
      n.reason = e.reason;
      n.mo_only = e.mt_unaware;
      n.receiver_name.clear();
      break;
    case action::transfer:  // Terminated, with the target (contract §10)
      n.reason = e.reason;
      n.transfer_target = e.transfer_to;
      break;
    case action::upgrade_to_meeting:  // the offer: the counterpart is asked
      n.status = std::string(upgrade_initiated);
      n.meeting_uri = e.meeting_uri;
      break;
    case action::upgrade:  // engine-caused: both parties, every device
      n.status = e.step;
      n.meeting_uri = e.meeting_uri;
      n.reason = e.reason;
      break;
    case action::waiting:
    case action::release:
      n.reason = e.reason;
      n.mo_only = e.mt_unaware;
      break;
    case action::in_progress:
      n.response_code = e.sdp ? 183 : 180;
      break;
    case action::ringing:
      n.response_code = 180;
      break;
    case action::hold:
      n.status = "Hold";  // the offer: the counterpart is asked to hold
      break;
    case action::resume:
      n.status = "Resume";  // the offer: the counterpart is asked to resume
      break;
    case action::end:
      n.reason = e.reason;
      break;
    case action::timeout:  // engine-caused: both parties, every device, with the timer's reason
      n.reason = e.reason;
      break;
    default:  // proceeding, connected, acceptHold (Hold), acceptResume (Connected), renegotiate (current)
      break;
  }
  return n;
}

notification invitation_for(const call_state& c) {
  notification n;
  n.type = notification_type::invitation;
  n.seq = c.start_seq;
  n.time = c.created_at;
  n.call_id = c.call_id;
  n.from = c.from;
  n.to = c.to;
  n.gateway = c.gateway;
  n.originator_name = c.mo_name;
  n.exclude_device.clear();  // a device that connects later did not cause it
  if (!c.mo_sdp.empty()) n.sdp = c.mo_sdp;
  n.identity = c.identity;
  n.call_waiting = c.call_waiting;
  // As the live invitation said: the last diversion's number, or who transferred the call.
  n.diversion = c.diversions.empty() ? c.transferred_from : c.diversions.back().from;
  return n;
}

std::string encode_notification(const notification& n, std::string_view base_path) {
  schemas::json_writer w(256 + (n.sdp ? n.sdp->size() : 0) + (n.identity ? n.identity->passport.size() : 0));
  std::string ref(base_path);
  ref += "/calls/";
  ref += n.call_id;
  w.begin_object();
  if (n.type == notification_type::invitation) {
    w.key("sessionInvitationNotification").begin_object();
    w.field("originatorAddress", std::string_view(schemas::tel_uri(n.from)));
    if (!n.originator_name.empty()) w.field("originatorName", std::string_view(n.originator_name));
    w.field("receiverAddress", std::string_view(schemas::tel_uri(n.to)));
    w.field("callObjectRef", std::string_view(ref));
    if (n.sdp) w.field("sdp", std::string_view(*n.sdp));
    // Contract §11: earned by the PASSporT the engine signed for its caller, or by verifying
    // a gateway's; the attestation and the PASSporT beside it.
    w.field("verificationStatus", schemas::passport::to_string(verification_of(n.identity)));
    if (n.identity && n.identity->attest) w.field("attestation", std::string_view(&n.identity->attest, 1));
    if (n.identity && !n.identity->passport.empty()) w.field("identity", std::string_view(n.identity->passport));
    if (!n.diversion.empty()) w.field("diversionAddress", std::string_view(schemas::tel_uri(n.diversion)));
    if (n.call_waiting) w.field("callWaiting", true);
  } else {
    w.key("sessionStatusNotification").begin_object();
    w.field("status", std::string_view(n.status));
    if (n.response_code) w.field("responseCode", *n.response_code);
    if (n.sdp) w.field("sdp", std::string_view(*n.sdp));
    if (!n.receiver_name.empty()) w.field("receiverName", std::string_view(n.receiver_name));
    w.field("receiverAddress", std::string_view(schemas::tel_uri(n.to)));
    w.field("callObjectRef", std::string_view(ref));
    if (!n.diversion.empty()) w.field("diversionAddress", std::string_view(schemas::tel_uri(n.diversion)));
    if (!n.transfer_target.empty())
      w.field("transferTargetAddress", std::string_view(schemas::tel_uri(n.transfer_target)));
    if (!n.meeting_uri.empty()) w.field("meetingUri", std::string_view(n.meeting_uri));
    if (n.reason) w.field("reason", std::string_view(*n.reason));
  }
  w.key("notificationReference").begin_object();
  w.field("epochTime", n.time).field("notificationId", n.seq).field("sequenceNumber", n.seq);
  w.end_object();
  w.end_object().end_object();
  return w.take();
}

}  // namespace engine
