#include "engine/decide.hpp"

#include <algorithm>

namespace engine {

namespace {

bool owns(const actor& who, std::string_view msisdn) {
  return std::find(who.msisdns.begin(), who.msisdns.end(), msisdn) != who.msisdns.end();
}

role counterpart(role r) { return r == role::mo ? role::mt : role::mo; }

// No progress from MT yet (the invite timer runs): Initial, or invited while busy
// (Waiting), or invited after a diversion (Forwarded).
bool awaits_mt(call_status s) {
  return s == call_status::initial || s == call_status::waiting || s == call_status::forwarded;
}

}  // namespace

void name_parties(event& e, const call_state& c) {
  e.from = c.from;
  e.to = c.to;
  e.gateway = c.gateway;
  e.mo_name = c.mo_name;
  e.mt_name = c.mt_name;
}

event make_event(const command& cmd, epoch_ms now) {
  event e;
  e.time = now;
  e.act = cmd.act;
  e.call_id = cmd.call_id;
  e.sub = cmd.who.sub;
  e.device_id = cmd.who.device_id;
  e.msisdn = cmd.who.msisdns.empty() ? std::string() : cmd.who.msisdns.front();
  e.txn_id = cmd.txn_id;
  e.method = cmd.method;
  e.path = cmd.path;
  if (cmd.act == action::start) {
    e.from = cmd.from;
    e.to = cmd.to;
    e.identity = cmd.identity;
    if (cmd.who.gateway) e.gateway = cmd.who.sub;
    if (!cmd.who.gateway) e.mo_name = cmd.who.name;  // a gateway's own name is not its caller's
  }
  if (cmd.act == action::start && cmd.transfer_of) e.transfer_of = *cmd.transfer_of;
  if (cmd.act == action::transfer) e.transfer_to = cmd.to;
  if (cmd.act == action::upgrade_to_meeting && cmd.meeting_uri) e.meeting_uri = *cmd.meeting_uri;
  if (cmd.act == action::accept_upgrade) e.accept = cmd.accept;
  e.sdp = cmd.sdp;
  e.client_correlator = cmd.client_correlator;
  e.reason = cmd.reason;
  e.conference = cmd.conference;
  return e;
}

namespace {

event reject(event e, reason_code why) {
  e.rejected = why;
  return e;
}

event accept(event e, call_status after) {
  e.status_after = after;
  return e;
}

// Decision for an existing call, after the party check. Returns the reasonCode of a
// rejection, or none with `after` set.
reason_code decide_on_call(const call_state& c, action act, role r, const command& cmd, call_status& after) {
  after = c.status;
  if (act == action::end) {
    if (is_ended(c.status)) return reason_code::none;  // idempotent: noop
    if (c.status == call_status::connected || c.status == call_status::hold) {
      after = call_status::terminated;
    } else if (r == role::mo) {
      after = call_status::session_cancelled;
    } else {
      after = (cmd.reason && *cmd.reason == "busy") ? call_status::busy : call_status::declined;
    }
    return reason_code::none;
  }
  if (is_ended(c.status)) return reason_code::call_ended;
  switch (act) {
    case action::in_progress:
    case action::proceeding:
    case action::ringing:
    case action::connected:
      if (r != role::mt) return reason_code::wrong_party;
      if (!is_early(c.status)) return reason_code::invalid_state;
      after = act == action::in_progress  ? call_status::in_progress
              : act == action::proceeding ? call_status::proceeding
              : act == action::ringing    ? call_status::ringing
                                          : call_status::connected;
      return reason_code::none;
    case action::hold:
      if (c.status != call_status::connected) return reason_code::invalid_state;
      if (c.offer) return reason_code::offer_pending;
      return reason_code::none;
    case action::accept_hold:
      if (c.status != call_status::connected) return reason_code::invalid_state;
      if (!c.offer || c.offer->kind != offer_kind::hold) return reason_code::no_offer_pending;
      if (c.offer->by == r) return reason_code::wrong_party;
      after = call_status::hold;
      return reason_code::none;
    case action::resume:
      if (c.status != call_status::hold) return reason_code::invalid_state;
      if (c.held_by != r) return reason_code::wrong_party;
      if (c.offer) return reason_code::offer_pending;
      return reason_code::none;
    case action::accept_resume:
      if (c.status != call_status::hold) return reason_code::invalid_state;
      if (!c.offer || c.offer->kind != offer_kind::resume) return reason_code::no_offer_pending;
      if (c.offer->by == r) return reason_code::wrong_party;
      after = call_status::connected;
      return reason_code::none;
    case action::renegotiate:
      if (c.status != call_status::connected && c.status != call_status::hold) return reason_code::invalid_state;
      if (c.offer && !(c.offer->kind == offer_kind::renegotiate && c.offer->by != r))
        return reason_code::offer_pending;
      return reason_code::none;
    case action::transfer:  // blind (contract §10): the call ends, the remaining party calls the target
      if (c.status != call_status::connected && c.status != call_status::hold) return reason_code::invalid_state;
      if (cmd.to.empty() || cmd.to == c.from || cmd.to == c.to) return reason_code::invalid_field;
      after = call_status::terminated;
      return reason_code::none;
    case action::upgrade_to_meeting:  // an offer, like hold
      if (c.status != call_status::connected) return reason_code::invalid_state;
      if (c.offer) return reason_code::offer_pending;
      if (!cmd.meeting_uri || cmd.meeting_uri->empty()) return reason_code::invalid_field;
      return reason_code::none;
    case action::accept_upgrade:
      if (c.status != call_status::connected) return reason_code::invalid_state;
      if (!c.offer || c.offer->kind != offer_kind::upgrade) return reason_code::no_offer_pending;
      if (c.offer->by == r) return reason_code::wrong_party;
      if (!cmd.accept) return reason_code::invalid_field;
      return reason_code::none;
    case action::start:
    case action::end:
    case action::timeout:
    case action::retire:
    case action::upgrade:            // route (engine/routing.cpp)
    case action::register_pusher:    // decide_pusher (engine/pushers.cpp)
    case action::unregister_pusher:
    case action::settings:           // decide_settings (engine/settings.cpp)
    case action::waiting:            // route (engine/routing.cpp)
    case action::forward:
    case action::divert:
    case action::release:
      break;
  }
  return reason_code::internal_error;  // unreachable: start and end handled above
}

// The expiry of a timer: NotReachable, NoAnswer, Terminated, or an offer withdrawn
// with the status unchanged.
event decide_timeout(const call_state& c, event e, timer_kind kind, epoch_ms now) {
  e.actor_role = role::engine;
  e.msisdn.clear();
  e.sdp.reset();
  e.status_before = c.status;
  const auto& deadline = c.timers[kind];
  if (!deadline || *deadline > now || is_ended(c.status)) return reject(std::move(e), reason_code::invalid_state);
  e.timer = kind;
  e.timer_deadline = *deadline;
  e.reason = std::string(expiry_reason(kind));
  switch (kind) {
    case timer_kind::invite: return accept(std::move(e), call_status::not_reachable);
    case timer_kind::answer: return accept(std::move(e), call_status::no_answer);
    case timer_kind::offer: return accept(std::move(e), c.status);
    // CFNR's own timer: the status stays; routing diverts the call when the MT still
    // forwards on no answer (else the expiry only disarms it).
    case timer_kind::no_answer: return accept(std::move(e), c.status);
    case timer_kind::max_duration: return accept(std::move(e), call_status::terminated);
    case timer_kind::retire: break;  // not a timeout: decide_retire
  }
  return reject(std::move(e), reason_code::internal_error);
}

// Retirement (contract §9): an ended call whose retention deadline has passed leaves
// memory. Changes no status and notifies nobody; the log keeps the call.
event decide_retire(const call_state& c, event e, epoch_ms now) {
  e.actor_role = role::engine;
  e.msisdn.clear();
  e.sdp.reset();
  e.status_before = c.status;
  const auto& deadline = c.timers[timer_kind::retire];
  if (!deadline || *deadline > now || !is_ended(c.status)) return reject(std::move(e), reason_code::invalid_state);
  e.timer = timer_kind::retire;
  e.timer_deadline = *deadline;
  return accept(std::move(e), c.status);
}

// The ending event of a call arms its retirement, retention_ms after it.
void arm_retire(event& e, const timer_settings& t) {
  if (!e.accepted() || e.noop || t.retention_ms < 0) return;
  if (!e.status_after || !is_ended(*e.status_after)) return;
  if (e.status_before && is_ended(*e.status_before)) return;
  e.arms[timer_kind::retire] = e.time + t.retention_ms;
}

std::optional<epoch_ms> after(epoch_ms now, epoch_ms duration) {
  if (duration <= 0) return std::nullopt;
  return now + duration;
}

// The deadlines an accepted event arms (contract §7).
void arm(event& e, const call_state* c, const timer_settings& t) {
  if (!e.accepted() || e.noop) return;
  switch (e.act) {
    case action::start:
      e.arms[timer_kind::invite] = after(e.time, t.invite_ms);
      e.arms[timer_kind::answer] = after(e.time, t.answer_ms);
      break;
    case action::connected:
      e.arms[timer_kind::max_duration] = after(e.time, t.max_duration_ms);
      break;
    case action::hold:
    case action::resume:
    case action::upgrade_to_meeting:
      e.arms[timer_kind::offer] = after(e.time, t.offer_ms);
      break;
    case action::renegotiate:
      if (c && !c->offer) e.arms[timer_kind::offer] = after(e.time, t.offer_ms);  // an offer, not an answer
      break;
    default:
      break;
  }
}

}  // namespace

std::optional<timer_kind> due_timer(const call_state& call, epoch_ms now) {
  if (is_ended(call.status)) return std::nullopt;
  std::optional<timer_kind> due;
  epoch_ms earliest = 0;
  for (int i = 0; i < timer_kind_count; ++i) {
    const auto k = static_cast<timer_kind>(i);
    const auto& d = call.timers[k];
    if (d && *d <= now && (!due || *d < earliest)) {
      due = k;
      earliest = *d;
    }
  }
  return due;
}

role resolve_role(const call_state& call, const actor& who, action act) {
  // A gateway's call (contract §11): MO is the gateway, whoever owns `from`.
  const bool is_mo = call.gateway.empty() ? owns(who, call.from) : (who.gateway && who.sub == call.gateway);
  const bool is_mt = owns(who, call.to);
  if (is_mo != is_mt) return is_mo ? role::mo : role::mt;
  if (!is_mo) return role::stranger;
  // One token owns both numbers: the action says which side it acts for.
  switch (act) {
    case action::in_progress:
    case action::proceeding:
    case action::ringing:
    case action::connected:
      return role::mt;
    case action::accept_hold:
    case action::accept_resume:
    case action::accept_upgrade:
      return call.offer ? counterpart(call.offer->by) : role::mo;
    case action::resume:
      return call.held_by.value_or(role::mo);
    case action::renegotiate:
      return (call.offer && call.offer->kind == offer_kind::renegotiate) ? counterpart(call.offer->by) : role::mo;
    case action::start:
    case action::hold:
    case action::end:
    case action::timeout:
    case action::retire:
    case action::register_pusher:
    case action::unregister_pusher:
    case action::settings:
    case action::waiting:
    case action::forward:
    case action::divert:
    case action::release:
    case action::transfer:
    case action::upgrade_to_meeting:
    case action::upgrade:
      return role::mo;
  }
  return role::mo;
}

event decide(const call_state* call, const command& cmd, epoch_ms now, const timer_settings& timers,
             const start_limits& limits) {
  event e = make_event(cmd, now);
  // decide_pusher's and decide_settings'; routing's (engine/routing.hpp) are never commands
  if (is_pusher_action(cmd.act) || cmd.act == action::settings || is_routing_action(cmd.act))
    return reject(std::move(e), reason_code::internal_error);
  if (cmd.act == action::timeout) {
    if (!call || !cmd.timer) return reject(std::move(e), reason_code::call_not_found);
    name_parties(e, *call);
    e = decide_timeout(*call, std::move(e), *cmd.timer, now);
    arm_retire(e, timers);
    return e;
  }
  if (cmd.act == action::retire) {
    if (!call) return reject(std::move(e), reason_code::call_not_found);
    name_parties(e, *call);
    return decide_retire(*call, std::move(e), now);
  }
  if (cmd.input_error != reason_code::none) return reject(std::move(e), cmd.input_error);

  if (cmd.act == action::start) {
    e.call_id.clear();
    // The owner of `from`, or a gateway speaking for a caller outside the engine.
    if (!cmd.who.gateway && !owns(cmd.who, cmd.from)) return reject(std::move(e), reason_code::forbidden);
    e.msisdn = cmd.from;
    e.actor_role = role::mo;
    if (call) {  // same from + clientCorrelator: answer with the first call, create nothing
      e.call_id = call->call_id;
      e.noop = true;
      e.status_before = call->status;
      e.status_after = call->status;
      return e;
    }
    // Taking up a transfer (contract §10): only the remaining party, only to the target,
    // within the offer timer of the transfer.
    if (cmd.transfer_of) {
      const call_state* old = limits.transferred;
      if (!old) return reject(std::move(e), reason_code::call_not_found);
      if (old->transfer_to.empty() || !old->transferred_by || !old->ended_at)
        return reject(std::move(e), reason_code::invalid_state);
      const role remaining = counterpart(*old->transferred_by);
      const std::string& number = remaining == role::mo ? old->from : old->to;
      const bool is_remaining = remaining == role::mo && !old->gateway.empty()
                                    ? (cmd.who.gateway && cmd.who.sub == old->gateway)
                                    : owns(cmd.who, number);
      if (cmd.from != number || !is_remaining) return reject(std::move(e), reason_code::wrong_party);
      if (cmd.to != old->transfer_to) return reject(std::move(e), reason_code::invalid_field);
      if (timers.offer_ms > 0 && now > *old->ended_at + timers.offer_ms)
        return reject(std::move(e), reason_code::invalid_state);
      e.diversion = *old->transferred_by == role::mo ? old->from : old->to;  // who transferred
    }
    // The call caps (contract §3a), after the owner check, before anything is created.
    if (limits.caps.max_calls_per_number > 0 && limits.calls_from >= limits.caps.max_calls_per_number)
      return reject(std::move(e), reason_code::too_many_calls);
    e.call_id = cmd.new_call_id;
    if (limits.caps.max_ringing_per_number > 0 && limits.ringing_to >= limits.caps.max_ringing_per_number) {
      // The callee is not flooded: the call ends at once, caused by the engine, and only MO
      // is told (engine/notify.cpp). No call timers, only its retirement.
      e.reason = std::string(too_many_calls_reason);
      e = accept(std::move(e), call_status::busy);
      arm_retire(e, timers);
      return e;
    }
    e = accept(std::move(e), call_status::initial);
    arm(e, nullptr, timers);
    return e;
  }

  if (!call) return reject(std::move(e), reason_code::call_not_found);
  // Every event of a call names its two parties: the log indexes it under both numbers,
  // and its notification can be derived from the event alone (replay, since=).
  name_parties(e, *call);
  const role r = resolve_role(*call, cmd.who, cmd.act);
  e.actor_role = r;
  if (r == role::stranger) {
    // A number the call was forwarded away from (contract §10): not a party any more.
    for (const auto& d : call->diversions)
      if (owns(cmd.who, d.from)) return reject(std::move(e), reason_code::call_forwarded);
    return reject(std::move(e), reason_code::forbidden);
  }
  // MT's name is learnt from its requests (the first that carries one, then kept current).
  if (r == role::mt && !cmd.who.name.empty()) e.mt_name = cmd.who.name;
  e.msisdn = r == role::mo ? call->from : call->to;
  e.status_before = call->status;
  call_status after{};
  const reason_code why = decide_on_call(*call, cmd.act, r, cmd, after);
  if (why != reason_code::none) return reject(std::move(e), why);
  if (cmd.act == action::end && is_ended(call->status)) e.noop = true;
  if (cmd.act == action::transfer) e.reason = std::string(transferred_reason);
  if (cmd.act == action::accept_upgrade && call->offer) e.meeting_uri = call->offer->meeting_uri;
  e = accept(std::move(e), after);
  arm(e, call, timers);
  arm_retire(e, timers);
  return e;
}

std::string explain_rejection(const event& e, const call_state* c) {
  const std::string act(to_string(e.act));
  const std::string status = c ? std::string(to_string(c->status)) : std::string();
  switch (e.rejected) {
    case reason_code::call_not_found:
      return "no call with callId '" + e.call_id + "'";
    case reason_code::forbidden:
      if (e.act == action::start) return "the access token does not own the number in 'from'";
      return "only the two parties of a call may act on it";
    case reason_code::call_ended:
      return "the call has ended (" + status + "); only DELETE /end is accepted";
    case reason_code::wrong_party:
      switch (e.act) {
        case action::accept_hold:
        case action::accept_resume:
          return "only the counterpart of the pending offer may accept it";
        case action::resume:
          return "only the party that put the call on hold may resume it";
        default:
          return "only the called party (MT) may send " + act;
      }
    case reason_code::invalid_state:
      if (e.act == action::timeout || e.act == action::retire) return "the timer is no longer armed";
      return act + " is not allowed while the call is " + status;
    case reason_code::offer_pending:
      if (c && c->offer)
        return std::string("a ") + std::string(to_string(c->offer->kind)) + " offer by " +
               std::string(to_string(c->offer->by)) + " is pending: one offer at a time";
      return "another offer is pending: one offer at a time";
    case reason_code::too_many_calls:
      return (e.gateway.empty() ? "the number " + e.from : "the gateway " + e.gateway) +
             " already has as many calls not ended as allowed (--max-calls-per-number); end one first";
    case reason_code::invalid_field:
      if (e.act == action::transfer)
        return "transfer to another number than the call's two parties ('to': " +
               (e.transfer_to.empty() ? std::string("missing") : e.transfer_to) + ")";
      if (e.act == action::start && !e.transfer_of.empty())
        return "a transfer is taken up only by calling its target ('to' must be the number it was transferred to)";
      if (e.act == action::upgrade_to_meeting) return "field 'meetingUri' is required";
      if (e.act == action::accept_upgrade) return "field 'accept' (true or false) is required";
      return {};
    case reason_code::call_forwarded:
      return "the call was forwarded away from your number" +
             (c ? " (it now rings " + c->to + ")" : std::string()) + "; only its current parties may act on it";
    case reason_code::no_offer_pending:
      return std::string("there is no pending ") + (e.act == action::accept_resume ? "resume" : "hold") +
             " offer to accept";
    default:
      return {};
  }
}

void apply(call_state& c, const event& e) {
  if (!e.accepted() || e.noop) return;
  auto side_sdp = [&](role r) -> std::string& { return r == role::mo ? c.mo_sdp : c.mt_sdp; };
  auto ends = [&] {  // the event ends the call: when, why; no offer survives it
    c.ended_at = e.time;
    c.end_reason = e.reason;
    c.offer.reset();
  };
  if (e.act == action::start) {
    c = call_state{};
    c.call_id = e.call_id;
    c.from = e.from;
    c.gateway = e.gateway;
    c.mo_name = e.mo_name;
    c.to = e.to;
    c.status = call_status::initial;
    c.client_correlator = e.client_correlator;
    c.identity = e.identity;
    c.call_waiting = e.call_waiting;
    c.transfer_of = e.transfer_of;
    if (!e.transfer_of.empty()) c.transferred_from = e.diversion;
    c.created_at = e.time;
    c.mo_sdp = e.sdp.value_or("");
    c.mo_device = e.device_id;
    c.start_seq = e.seq;
    if (e.status_after && is_ended(*e.status_after)) {  // ended at once by the ringing cap
      c.ended_at = e.time;
      c.end_reason = e.reason;
    }
  } else {
    // The offerer's SDP before an offer, kept so that a withdrawn offer can restore it.
    const bool offers = e.act == action::hold || e.act == action::resume || e.act == action::upgrade_to_meeting ||
                        (e.act == action::renegotiate && !c.offer);
    std::string prior = offers && e.actor_role != role::engine ? side_sdp(e.actor_role) : std::string();
    if (e.sdp && e.actor_role != role::engine) side_sdp(e.actor_role) = *e.sdp;
    switch (e.act) {
      case action::connected:
        c.connected_at = e.time;
        c.mt_device = e.device_id;
        break;
      case action::hold:
        c.offer = pending_offer{e.actor_role, offer_kind::hold, e.time, std::move(prior), {}};
        break;
      case action::accept_hold:
        c.held_by = c.offer ? std::optional<role>(c.offer->by) : std::nullopt;
        c.offer.reset();
        break;
      case action::resume:
        c.offer = pending_offer{e.actor_role, offer_kind::resume, e.time, std::move(prior), {}};
        break;
      case action::accept_resume:
        c.held_by.reset();
        c.offer.reset();
        break;
      case action::renegotiate:
        if (c.offer)
          c.offer.reset();  // the counterpart's answer
        else
          c.offer = pending_offer{e.actor_role, offer_kind::renegotiate, e.time, std::move(prior), {}};
        break;
      case action::end:
        if (!e.routed) ends();  // routed: MT busy, diverted by CFB; the events after it go on
        break;
      case action::transfer:
        ends();
        c.transfer_to = e.transfer_to;
        c.transferred_by = e.actor_role;
        break;
      case action::upgrade_to_meeting:
        c.offer = pending_offer{e.actor_role, offer_kind::upgrade, e.time, std::move(prior), e.meeting_uri};
        break;
      case action::accept_upgrade:  // the engine's steps after it tell what comes of it
        c.offer.reset();
        break;
      case action::upgrade:
        if (e.step == upgrade_success) c.meeting_uri = e.meeting_uri;
        if (e.step == upgrade_failed) c.offer.reset();  // an upgrade withdrawn: no SDP changed
        break;
      case action::forward:  // MT is now the target; the diversion's invitation follows
        if (c.dialled.empty()) c.dialled = c.to;
        c.diversions.push_back(diversion{e.diversion, e.to, e.reason.value_or(""), e.time});
        c.to = e.to;
        c.mt_name.clear();
        c.mt_sdp.clear();  // early media of the former MT
        c.call_waiting = false;
        c.timers[timer_kind::invite].reset();
        c.timers[timer_kind::answer].reset();
        c.timers[timer_kind::no_answer].reset();
        break;
      case action::divert:
        c.call_waiting = e.call_waiting;
        break;
      case action::waiting:
        c.call_waiting = true;
        break;
      case action::release:
        ends();
        break;
      case action::retire:
        c.retired = true;
        c.timers[timer_kind::retire].reset();
        break;
      case action::timeout:
        if (e.timer) c.timers[*e.timer].reset();  // expired: decided once
        if (e.routed || e.timer == timer_kind::no_answer) {
          // diverted by the events after it, or CFNR no longer set: nothing ends
        } else if (e.timer == timer_kind::offer) {  // withdrawn: the offerer's SDP is as before
          if (c.offer) side_sdp(c.offer->by) = std::move(c.offer->prior_sdp);
          c.offer.reset();
        } else {
          ends();
        }
        break;
      default:
        break;
    }
  }
  if (e.status_after) c.status = *e.status_after;
  if (!e.mt_name.empty()) c.mt_name = e.mt_name;
  if (is_ended(c.status)) c.held_by.reset();
  // The PASSporT travels in the invitation only: once no longer ringing, the call drops it
  // (the start event keeps it).
  if (c.identity && !is_early(c.status)) c.identity->passport.clear();
  // Timers: arm what the event armed, then keep only those that can still fire.
  for (int i = 0; i < timer_kind_count; ++i)
    if (e.arms.slot[i]) c.timers.slot[i] = e.arms.slot[i];
  if (!awaits_mt(c.status)) c.timers[timer_kind::invite].reset();
  if (!is_early(c.status)) {
    c.timers[timer_kind::answer].reset();
    c.timers[timer_kind::no_answer].reset();
  }
  if (!c.offer) c.timers[timer_kind::offer].reset();
  if (c.status != call_status::connected && c.status != call_status::hold) c.timers[timer_kind::max_duration].reset();
  c.last_seq = e.seq;
  ++c.event_count;
}

}  // namespace engine
