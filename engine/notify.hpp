#pragma once
// Notifications (contract §5) as a pure function of one committed event: the same
// event always gives the same notification, so live delivery and replay from the log
// (GET /notifications?since=N) send identical frames.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/types.hpp"

namespace engine {

enum class notification_type { invitation, status };

struct notification {
  notification_type type = notification_type::status;
  event_seq seq = 0;   // sequenceNumber: the log position of the causing event
  epoch_ms time = 0;   // epochTime
  std::string call_id;
  std::string from, to;  // the call's parties (MO, MT)
  std::string gateway;   // a gateway's call (contract §11): MO is told as gateway_party(gateway), not as `from`
  // Who is told: an invitation goes to every device of MT; a status change to every
  // device of both parties except the one whose request caused it (same sub and
  // device_id; engine-caused events exclude nobody).
  std::string exclude_sub, exclude_device;
  // Told to MO's devices only: a /start ended at once by the ringing cap (contract §3a),
  // so that the callee is not flooded.
  bool mo_only = false;
  // payload
  std::string status;  // SessionStatus (status notifications)
  std::optional<int> response_code;
  std::optional<std::string> sdp;
  std::optional<std::string> reason;
  std::optional<caller_identity> identity;  // invitations: verificationStatus, attestation, identity
  std::string originator_name;  // invitations: MO's display name (originatorName), "" when unknown
  std::string receiver_name;    // statuses: MT's display name (receiverName), "" when unknown
  // Contract §10: diversionAddress (the number that forwarded: Forwarded statuses and a
  // diversion's invitation), and callWaiting on the invitation of a call to a busy number.
  std::string diversion;
  bool call_waiting = false;
  // A transfer's Terminated: transferTargetAddress; an upgrade's steps: meetingUri.
  std::string transfer_target;
  std::string meeting_uri;

  // Whether a device (token sub, device_id, numbers) receives this notification.
  bool is_for(std::string_view sub, std::string_view device_id, const std::vector<std::string>& msisdns) const;
  // The numbers whose devices may receive it (MT only for invitations, MO only when
  // mo_only).
  std::vector<std::string> recipients() const;
};

// The notification an accepted, state-changing event causes; nullopt for rejected and
// noop events, settings and pusher events, retirements, and events that gave way to the
// engine's routing (event::routed, a noAnswer timer that diverted nothing). The engine's
// routing events (contract §10) are told to every device of the parties aware of the
// call: waiting to both; forward to MO and the MT it left (when that MT was invited),
// with diversionAddress; divert is the new MT's invitation; release to MO and MT (MO
// only when MT was never invited). A /start ended at once by the ringing cap is no invitation: it is a status
// notification Busy, reason "too-many-calls", to every device of MO (the requesting one
// included, since the engine caused it) and to no device of MT.
std::optional<notification> derive_notification(const event& e);

// The invitation of a call that is still ringing (status early), for a device that
// connects without `since`.
notification invitation_for(const call_state& c);

// The frame sent on the WebSocket: {"sessionInvitationNotification":{…}} or
// {"sessionStatusNotification":{…}}, with callObjectRef = base_path + "/calls/" + id.
std::string encode_notification(const notification& n, std::string_view base_path);

}  // namespace engine
