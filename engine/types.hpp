#pragma once
// The call domain as plain values: statuses, actions, commands, events and call state.
// No I/O, no threads: everything here is copyable data, which is what makes replay
// exact (see engine/README.md for the transition table).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/passport.hpp"
#include "schemas/reason_code.hpp"

namespace engine {

using schemas::reason_code;

// Log position of an event; 1-based, gapless.
using event_seq = std::uint64_t;
// Milliseconds since the Unix epoch.
using epoch_ms = std::int64_t;

// The reference's SessionStatus values that the engine uses.
enum class call_status : std::uint8_t {
  initial,
  in_progress,
  proceeding,
  ringing,
  connected,
  hold,
  terminated,
  session_cancelled,
  declined,
  busy,
  no_answer,
  not_reachable,
  failed,
  // Contract §10 (appended: statuses are stored by name, but keep the order stable)
  waiting,    // early: MT is in another call and has call waiting on; the call rings it all the same
  forwarded,  // early: the call was diverted to another number, which is being invited
};
std::string_view to_string(call_status s) noexcept;
std::optional<call_status> parse_call_status(std::string_view s) noexcept;
// Initial, InProgress, Proceeding, Ringing, Waiting, Forwarded: before anyone answered.
bool is_early(call_status s) noexcept;
bool is_ended(call_status s) noexcept;

// What an event does: the reference's eleven endpoints, then the engine's own action.
enum class action : std::uint8_t {
  start,
  in_progress,
  proceeding,
  ringing,
  connected,
  hold,
  accept_hold,
  resume,
  accept_resume,
  renegotiate,
  end,
  timeout,  // a timer expired (engine-caused; never a request)
  retire,   // an ended call leaves memory after --call-retention (engine-caused; contract §9)
  // Push registrations (contract §13): POST /pushers, DELETE /pushers/{deviceId}, and the
  // engine's own removals (expired, or a pushkey the gateway rejected). No call.
  register_pusher,
  unregister_pusher,
  // Per-number settings (contract §10): PUT /settings/{msisdn}. No call.
  settings,
  // The engine's own routing decisions (contract §10), each written in the batch of the
  // event that triggered it (a /start, an MT's busy /end, a timer), right after it:
  waiting,  // MT is busy and has call waiting on: MO is told Waiting (status Waiting)
  forward,  // the call is diverted away from its MT: MO (and that MT, if it was invited) told Forwarded
  divert,   // the diversion's invitation: the call's new MT is invited (diversionAddress)
  release,  // the engine ends the call: Busy (user-busy), NotReachable (forwarding-limit, -loop), Terminated (upgraded)
  // Contract §10, requests on a call: blind transfer, and the upgrade to a meeting (an offer).
  transfer,
  upgrade_to_meeting,
  accept_upgrade,
  upgrade,  // the engine's steps of an upgrade: UpgradeToMeetingInProgress, -Success, -Failed
};
inline constexpr int endpoint_count = 11;  // start .. end: the reference's endpoints
inline constexpr int action_count = 24;
// The actions that are about a device's push registration, not a call.
constexpr bool is_pusher_action(action a) noexcept {
  return a == action::register_pusher || a == action::unregister_pusher;
}
// The actions the engine takes on a call on its own while routing it (contract §10).
constexpr bool is_routing_action(action a) noexcept {
  return a == action::waiting || a == action::forward || a == action::divert || a == action::release ||
         a == action::upgrade;
}
// Stable name used in events and metrics, e.g. "acceptHold" (the reference's path word).
std::string_view to_string(action a) noexcept;
std::optional<action> parse_action(std::string_view s) noexcept;

// A party's role on a call.
enum class role : std::uint8_t { mo, mt, stranger, engine };
std::string_view to_string(role r) noexcept;
std::optional<role> parse_role(std::string_view s) noexcept;

enum class offer_kind : std::uint8_t { hold, resume, renegotiate, upgrade };
std::string_view to_string(offer_kind k) noexcept;
std::optional<offer_kind> parse_offer_kind(std::string_view s) noexcept;

// The timers of contract §7. Each is armed by an event that records its absolute
// deadline, so a restart or a replay sees the same deadlines whatever the flags are now.
enum class timer_kind : std::uint8_t {
  invite,        // no MT progress after /start: NotReachable
  answer,        // not Connected after /start: NoAnswer
  offer,         // hold, resume or renegotiate not answered: offer withdrawn
  max_duration,  // Connected for too long: Terminated
  retire,        // ended long enough ago (--call-retention): the call leaves memory (action::retire)
  no_answer,     // the MT's own no-answer forwarding (CFNR, contract §10) is due: the call is diverted
};
inline constexpr int timer_kind_count = 6;
// "invite", "answer", "offer", "maxDuration", "retire", "noAnswer"
std::string_view to_string(timer_kind k) noexcept;
std::optional<timer_kind> parse_timer_kind(std::string_view s) noexcept;
// The `reason` an expiry carries: "invite-timeout", "answer-timeout", "offer-timeout",
// "max-duration" ("retention" for retire, which notifies nobody; "no-answer-forwarding" for
// noAnswer, which diverts).
std::string_view expiry_reason(timer_kind k) noexcept;

// Absolute deadlines in ms since the epoch, one slot per timer_kind; empty = not armed.
struct deadlines {
  std::optional<epoch_ms> slot[timer_kind_count];

  std::optional<epoch_ms>& operator[](timer_kind k) noexcept { return slot[static_cast<int>(k)]; }
  const std::optional<epoch_ms>& operator[](timer_kind k) const noexcept { return slot[static_cast<int>(k)]; }
  bool any() const noexcept;
  bool operator==(const deadlines&) const = default;
};

// How long each timer runs, in ms (contract §7 defaults); 0 = never armed.
struct timer_settings {
  epoch_ms invite_ms = 30'000;
  epoch_ms answer_ms = 90'000;
  epoch_ms offer_ms = 15'000;
  epoch_ms max_duration_ms = 4 * 3'600'000;
  // How long an ended call stays in memory before it is retired (contract §9); 0: retired
  // at once after its ending event, negative: never (tests of the fold alone).
  epoch_ms retention_ms = 3'600'000;
};

// The call caps of contract §3a; 0 = off.
struct call_caps {
  // Calls not ended with the same `from`; a further /start is 429 TOO_MANY_CALLS.
  std::size_t max_calls_per_number = 100;
  // Calls ringing one number (early status, it is their MT); a further /start to it ends
  // at once Busy, reason "too-many-calls", told to MO only.
  std::size_t max_ringing_per_number = 32;
};

// The reason of a /start ended at once by the ringing cap.
inline constexpr std::string_view too_many_calls_reason = "too-many-calls";
// Contract §10: the reasons of a transferred and of an upgraded call's end, and the
// statuses the upgrade steps tell.
inline constexpr std::string_view transferred_reason = "transferred";
inline constexpr std::string_view upgraded_reason = "upgraded";
inline constexpr std::string_view upgrade_initiated = "UpgradeToMeetingInitiated";
inline constexpr std::string_view upgrade_in_progress = "UpgradeToMeetingInProgress";
inline constexpr std::string_view upgrade_success = "UpgradeToMeetingSuccess";
inline constexpr std::string_view upgrade_failed = "UpgradeToMeetingFailed";

// Who sent a request: from the verified access token.
struct actor {
  std::string sub;
  std::string device_id;
  std::vector<std::string> msisdns;  // numbers the token may call from and receive on
  // A gateway (contract §11): /start from any number; the MO party of its calls is its
  // sub, not the owner of `from`. It owns no number (msisdns empty).
  bool gateway = false;
  std::string name;  // the token's `name` claim: a display name (contract §10); "" when none
};

// Where a gateway is indexed and told as a party, in place of a number: "gw:<sub>" (a
// number is digits only, so the two never meet).
inline std::string gateway_party(std::string_view sub) { return "gw:" + std::string(sub); }
// The MO party of a call: its `from`, or its gateway's party when a gateway started it.
// What the per-number call cap, the clientCorrelator key and MO's notifications go by.
inline std::string mo_party(std::string_view from, std::string_view gateway) {
  return gateway.empty() ? std::string(from) : gateway_party(gateway);
}

// A push registration (contract §13): how to wake the device (sub, device_id) when it has
// no notification socket open. Part of the fold, like a call.
struct pusher {
  std::string sub, device_id;        // the device: the registering token's
  std::vector<std::string> msisdns;  // the registering token's numbers: whose invitations wake it
  std::string url;                   // the push gateway (…/_matrix/push/v1/notify)
  std::string app_id, pushkey;
  std::string data;                  // the client's `data` object, as JSON text ("" = none)
  epoch_ms expires_at = 0;           // --pusher-ttl after the registering token's exp
  event_seq since = 0;               // the event that registered it
  bool operator==(const pusher&) const = default;
};

// A number's settings (contract §10): call waiting and forwarding. Part of the fold; a
// number without a record has the defaults (call waiting on, no forwarding).
struct number_settings {
  std::string msisdn;
  bool call_waiting = true;
  std::optional<std::string> unconditional;  // CFU: every call goes there
  std::optional<std::string> busy;           // CFB: while in a call (or an MT /end with reason busy)
  std::optional<std::string> no_answer;      // CFNR: not answered in no_answer_timeout_s
  int no_answer_timeout_s = 20;
  std::optional<std::string> not_reachable;  // CFNRc: no device (no socket, no pusher), or the invite timer
  event_seq since = 0;                       // the event that set them
  // The defaults: nothing to keep.
  bool is_default() const noexcept {
    return call_waiting && !unconditional && !busy && !no_answer && !not_reachable;
  }
  bool same_rules(const number_settings& o) const noexcept {
    return call_waiting == o.call_waiting && unconditional == o.unconditional && busy == o.busy &&
           no_answer == o.no_answer && (!no_answer || no_answer_timeout_s == o.no_answer_timeout_s) &&
           not_reachable == o.not_reachable;
  }
  bool operator==(const number_settings&) const = default;
};

// One diversion of a call (contract §10): `from` (the MT then) forwarded it to `to`.
struct diversion {
  std::string from, to;
  std::string reason;  // "unconditional", "user-busy", "no-answer", "unavailable"
  epoch_ms time = 0;
  bool operator==(const diversion&) const = default;
};
inline constexpr std::size_t max_diversions = 5;

// The caller identity of a /start (contract §11), decided by transport before the command
// reaches the reactor: the PASSporT the engine signed for its own caller (Passed, attest
// A), or what verifying a gateway's `identity` gave (Passed, Failed with the reason, or
// None when it sent none). Recorded on the start event, told in the invitation.
struct caller_identity {
  schemas::passport::verification status = schemas::passport::verification::none;
  char attest = 0;           // 'A', 'B' or 'C' (the PASSporT's); 0: none
  std::string passport;      // the compact PASSporT; "" when none (kept only while ringing)
  std::string failure;       // Failed: a schemas::passport::failure name; else ""
  std::string detail;        // Failed: one human sentence (x5u's error, the chain's…); else ""
  bool operator==(const caller_identity&) const = default;
};

// The verificationStatus told for a call: its identity's, or Passed for a start recorded
// before caller identity existed (its token owned `from`).
inline schemas::passport::verification verification_of(const std::optional<caller_identity>& id) noexcept {
  return id ? id->status : schemas::passport::verification::passed;
}

// A typed request, built by transport after authentication and input decoding, and
// handed to the reactor. input_error is set when decoding failed: the request still
// becomes a (rejected) event, as every authenticated request does (contract §6).
struct command {
  action act = action::start;
  std::string call_id;      // empty for start
  std::string new_call_id;  // start: the id to give the new call (random, made by transport)
  actor who;
  std::string txn_id;
  std::string method;
  std::string path;
  // payload
  std::string from, to;  // start, normalized
  std::optional<std::string> sdp;
  std::optional<std::string> client_correlator;
  std::optional<std::string> reason;      // end: `reason` header
  std::optional<std::string> conference;  // end: `conference` header
  std::optional<timer_kind> timer;        // timeout: which timer expired
  std::optional<caller_identity> identity;  // start: signed or verified by transport
  // register_pusher: the registration asked for (url, app_id, pushkey, data, expires_at;
  // the device and numbers are the token's). unregister_pusher: the device named
  // (sub, device_id); for the engine's own removal of a rejected pushkey, that pushkey.
  std::optional<pusher> push;
  // settings: the number's settings asked for (msisdn = the path's number).
  std::optional<number_settings> settings;
  // Contract §10. transfer: the target is in `to`. start: transferOf, the call whose
  // transfer this new call takes up. upgradeToMeeting: the meeting's URI (the request's,
  // or one transport made under --meeting-base-uri). acceptUpgrade: accept or reject.
  std::optional<std::string> transfer_of;
  std::optional<std::string> meeting_uri;
  std::optional<bool> accept;
  // Made by the engine, not by a request (the removal of an expired or rejected
  // registration); transport never sets it for a request.
  bool by_engine = false;
  reason_code input_error = reason_code::none;
  std::string input_error_message;
};

// One immutable entry of the log (contract §6). Accepted events change state through
// apply(); rejected ones record the reasonCode and change nothing.
struct event {
  static constexpr std::uint32_t current_version = 1;
  std::uint32_t version = current_version;
  event_seq seq = 0;
  epoch_ms time = 0;
  action act = action::start;
  std::string call_id;
  // actor
  std::string msisdn;  // the number the actor acted as (its party's), or its first number
  role actor_role = role::stranger;
  std::string sub;
  std::string device_id;
  std::string txn_id;
  std::string method;
  std::string path;
  // payload
  std::string from, to;  // the call's parties (start: as requested); empty for unknown calls
  std::string gateway;   // the sub of the gateway that started the call (its MO party); "" for engine callers
  // The parties' display names (token claim `name`, contract §10) as known after this
  // event: the start's caller, and MT's from its first request that carried one.
  std::string mo_name, mt_name;
  std::optional<std::string> sdp;
  std::optional<std::string> client_correlator;
  std::optional<std::string> reason;
  std::optional<std::string> conference;
  std::optional<caller_identity> identity;  // start: the caller identity (absent in older logs: Passed)
  // register_pusher: the registration as it is now; unregister_pusher: the device whose
  // registration goes (sub, device_id).
  std::optional<pusher> push;
  // settings: the number's settings as they are now (msisdn: the number).
  std::optional<number_settings> settings;
  // Routing (contract §10). `routed`: the engine's events that follow this one in its batch
  // decide what happens next, so this one tells nobody and ends nothing (a /start whose MT
  // is not invited, an MT's busy /end or a timer that diverts). `diversion`: forward, the
  // number that forwarded (the MT before it; `to` is the target); divert, the number the
  // invitation names as diversionAddress. `call_waiting`: the invitation of this start or
  // divert says callWaiting. `mt_unaware`: an engine event whose MT was never invited, so
  // only MO is told. A forward's reason ("unconditional", "user-busy", …) is in `reason`.
  bool routed = false;
  std::string diversion;
  bool call_waiting = false;
  bool mt_unaware = false;
  // Transfer and upgrade (contract §10). transfer: `transfer_to` the target. start:
  // `transfer_of` the transferred call (its invitation's diversionAddress, `diversion`, is
  // the transferring party). upgradeToMeeting, acceptUpgrade and the upgrade steps:
  // `meeting_uri`. acceptUpgrade: `accept`. upgrade: `step`, the status told
  // ("UpgradeToMeetingInProgress", "UpgradeToMeetingSuccess", "UpgradeToMeetingFailed").
  std::string transfer_to;
  std::string transfer_of;
  std::string meeting_uri;
  std::optional<bool> accept;
  std::string step;
  // timers: the deadlines this event arms (absolute, contract §7), and for a timeout
  // event the timer that expired and the deadline it had
  deadlines arms;
  std::optional<timer_kind> timer;
  epoch_ms timer_deadline = 0;
  // outcome
  reason_code rejected = reason_code::none;  // none = accepted
  bool noop = false;  // accepted but changed nothing (repeated /start, /end on an ended call)
  std::optional<call_status> status_before;
  std::optional<call_status> status_after;
  // hash chain: lower-case hex SHA-256 of the previous stored record (64 zeros for seq 1).
  // Set by storage when the event is written.
  std::string prev_hash;

  bool accepted() const noexcept { return rejected == reason_code::none; }
};

struct pending_offer {
  role by = role::mo;
  offer_kind kind = offer_kind::hold;
  epoch_ms since = 0;
  std::string prior_sdp;  // the offerer's SDP before the offer: restored if it is withdrawn
  std::string meeting_uri;  // an upgrade offer's meeting
};

// The state of one call: a pure fold of its events.
struct call_state {
  std::string call_id;
  std::string from;  // MO
  std::string to;    // MT
  std::string gateway;  // a gateway's call (contract §11): the gateway's sub, MO instead of from's owner
  std::string mo_name, mt_name;  // display names (token claim `name`); "" when unknown
  call_status status = call_status::initial;
  std::optional<std::string> client_correlator;
  epoch_ms created_at = 0;
  std::optional<epoch_ms> connected_at;
  std::optional<epoch_ms> ended_at;
  std::optional<std::string> end_reason;
  std::optional<pending_offer> offer;
  std::optional<role> held_by;  // set while status is Hold
  std::string mo_sdp;           // last SDP of each side
  std::string mt_sdp;
  std::optional<caller_identity> identity;  // the start's; its PASSporT dropped once no longer ringing
  // Forwarding (contract §10): the number MO dialled ("" while it is still `to`), and every
  // diversion in order; `call_waiting`: the current MT's invitation said callWaiting.
  std::string dialled;
  std::vector<diversion> diversions;
  bool call_waiting = false;
  const std::string& dialled_number() const noexcept { return dialled.empty() ? to : dialled; }
  // Transfer (contract §10): this call was transferred to `transfer_to` by `transferred_by`
  // (ended Terminated, reason "transferred"), or it takes up the transfer of `transfer_of`.
  std::string transfer_to;
  std::optional<role> transferred_by;
  std::string transfer_of;
  std::string transferred_from;  // with transfer_of: the party that transferred (the invitation's diversionAddress)
  // Upgrade (contract §10): the meeting the call was upgraded to (ended, reason "upgraded").
  std::string meeting_uri;
  std::string mo_device;        // device that started the call
  std::string mt_device;        // device that answered (empty until Connected)
  deadlines timers;             // armed timers; only those that can still fire
  event_seq start_seq = 0;      // the start event: the invitation's sequenceNumber
  event_seq last_seq = 0;
  std::uint32_t event_count = 0;
  // The retire event has been folded (contract §9). The engine's call table drops a call
  // then; a fold that keeps every call (yna-tool, a retired call read from the log) marks it.
  bool retired = false;
};

}  // namespace engine
