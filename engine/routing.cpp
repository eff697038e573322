#include "engine/routing.hpp"

#include <algorithm>

#include "engine/decide.hpp"

namespace engine {

namespace {

// Builds the chain of engine events after a trigger, folding each into `call` as it goes
// so that every decision sees the call as the events before it left it.
struct router {
  const routing_view& view;
  const timer_settings& timers;
  epoch_ms now;
  call_state call;
  std::vector<event> out;

  event make(action a, call_status after) const {
    event e;
    e.time = now;
    e.act = a;
    e.call_id = call.call_id;
    e.actor_role = role::engine;
    name_parties(e, call);
    e.status_before = call.status;
    e.status_after = after;
    return e;
  }

  void push(event e) {
    engine::apply(call, e);
    out.push_back(std::move(e));
  }

  bool seen(std::string_view n) const {
    if (n == call.from || n == call.dialled_number()) return true;
    return std::any_of(call.diversions.begin(), call.diversions.end(),
                       [&](const diversion& d) { return d.to == n || d.from == n; });
  }

  // The engine ends the call; `mt_aware`: its MT was invited, so it is told too.
  void release(call_status status, std::string_view reason, bool mt_aware) {
    event e = make(action::release, status);
    e.reason = std::string(reason);
    e.mt_unaware = !mt_aware;
    if (timers.retention_ms >= 0) e.arms[timer_kind::retire] = now + timers.retention_ms;
    push(std::move(e));
  }

  // The call leaves its MT for `target`, which then decides (arrive).
  void forward(const std::string& target, std::string_view reason, bool mt_aware) {
    if (call.diversions.size() >= max_diversions) return release(call_status::not_reachable, reason_forwarding_limit, mt_aware);
    if (seen(target)) return release(call_status::not_reachable, reason_forwarding_loop, mt_aware);
    event e = make(action::forward, call_status::forwarded);
    e.msisdn = call.to;  // audited under the number that forwarded
    e.diversion = call.to;
    e.to = target;
    e.mt_name.clear();
    e.reason = std::string(reason);
    e.mt_unaware = !mt_aware;
    push(std::move(e));
    arrive();
  }

  // The deadlines a call ringing an MT with settings `s` runs on (contract §7, §10).
  void arm_ringing(event& e, const number_settings& s) const {
    if (timers.invite_ms > 0) e.arms[timer_kind::invite] = now + timers.invite_ms;
    if (timers.answer_ms > 0) e.arms[timer_kind::answer] = now + timers.answer_ms;
    if (s.no_answer) e.arms[timer_kind::no_answer] = now + static_cast<epoch_ms>(s.no_answer_timeout_s) * 1000;
  }

  // The target (the call's MT after a forward) is invited.
  void invite(const number_settings& s, bool call_waiting) {
    event e = make(action::divert, call.status);
    e.diversion = call.diversions.empty() ? std::string() : call.diversions.back().from;
    e.call_waiting = call_waiting;
    e.identity = call.identity;  // the invitation carries the caller's identity (contract §11)
    if (!call.mo_sdp.empty()) e.sdp = call.mo_sdp;
    arm_ringing(e, s);
    push(std::move(e));
    if (call_waiting) push(make(action::waiting, call_status::waiting));
  }

  // One step of an upgrade to a meeting (the call stays Connected).
  void upgrade_step(std::string_view step, const std::string& uri, std::optional<std::string> reason = {}) {
    event e = make(action::upgrade, call.status);
    e.step = std::string(step);
    e.meeting_uri = uri;
    e.reason = std::move(reason);
    push(std::move(e));
  }

  // The call's MT, just forwarded to, decides: its own forwarding, or it is invited.
  void arrive() {
    const number_settings s = view.settings(call.to);
    if (s.unconditional) return forward(*s.unconditional, reason_unconditional, false);
    if (s.not_reachable && !view.reachable(call.to)) return forward(*s.not_reachable, reason_unavailable, false);
    if (view.engaged(call.to)) {
      if (s.call_waiting && !view.has_waiting(call.to)) return invite(s, true);
      if (s.busy) return forward(*s.busy, reason_user_busy, false);
      return release(call_status::busy, reason_user_busy, false);
    }
    invite(s, false);
  }
};

// The trigger's own outcome gives way to the events after it: it tells nobody, ends
// nothing, arms nothing.
void give_way(event& trigger) {
  trigger.routed = true;
  if (trigger.act != action::start) trigger.status_after = trigger.status_before;
  trigger.arms = deadlines{};
}

}  // namespace

std::vector<event> route(event& trigger, const call_state* before, const routing_view& view,
                         const timer_settings& timers) {
  if (!trigger.accepted() || trigger.noop || !trigger.status_after) return {};
  router r{view, timers, trigger.time, {}, {}};
  switch (trigger.act) {
    case action::start: {
      if (is_ended(*trigger.status_after)) return {};  // ended at once by the ringing cap
      const number_settings s = view.settings(trigger.to);
      // Contract §10, in this order: CFU; (the ringing cap, decided already); not
      // reachable; busy; else it rings.
      const std::optional<std::string>* target = nullptr;
      std::string_view reason;
      bool busy_release = false;
      if (s.unconditional) {
        target = &s.unconditional;
        reason = reason_unconditional;
      } else if (s.not_reachable && !view.reachable(trigger.to)) {
        target = &s.not_reachable;
        reason = reason_unavailable;
      } else if (view.engaged(trigger.to)) {
        if (s.call_waiting && !view.has_waiting(trigger.to)) {
          trigger.call_waiting = true;
          if (s.no_answer) trigger.arms[timer_kind::no_answer] = trigger.time + s.no_answer_timeout_s * epoch_ms{1000};
          engine::apply(r.call, trigger);
          r.push(r.make(action::waiting, call_status::waiting));
          return std::move(r.out);
        }
        if (s.busy) {
          target = &s.busy;
          reason = reason_user_busy;
        } else {
          busy_release = true;
        }
      }
      if (!target && !busy_release) {  // it rings, as without settings
        if (s.no_answer) trigger.arms[timer_kind::no_answer] = trigger.time + s.no_answer_timeout_s * epoch_ms{1000};
        return {};
      }
      give_way(trigger);
      engine::apply(r.call, trigger);
      if (busy_release)
        r.release(call_status::busy, reason_user_busy, false);
      else
        r.forward(**target, reason, false);
      return std::move(r.out);
    }
    case action::end: {
      // MT busy while it rings: CFB when set.
      if (!before || trigger.actor_role != role::mt || *trigger.status_after != call_status::busy ||
          !is_early(before->status))
        return {};
      const number_settings s = view.settings(before->to);
      if (!s.busy) return {};
      give_way(trigger);
      r.call = *before;
      engine::apply(r.call, trigger);
      r.forward(*s.busy, reason_user_busy, true);
      return std::move(r.out);
    }
    case action::accept_upgrade: {  // contract §10: the engine's steps tell what comes of it
      if (!before || !trigger.accept) return {};
      const std::string uri = trigger.meeting_uri;
      give_way(trigger);
      r.call = *before;
      engine::apply(r.call, trigger);
      if (*trigger.accept) {
        r.upgrade_step(upgrade_in_progress, uri);
        r.upgrade_step(upgrade_success, uri);
        r.release(call_status::terminated, upgraded_reason, true);
      } else {
        r.upgrade_step(upgrade_failed, uri, "rejected");
      }
      return std::move(r.out);
    }
    case action::timeout: {
      // An upgrade offer not answered in time: withdrawn, told as UpgradeToMeetingFailed.
      if (before && trigger.timer == timer_kind::offer && before->offer && before->offer->kind == offer_kind::upgrade) {
        const std::string uri = before->offer->meeting_uri;
        give_way(trigger);
        r.call = *before;
        engine::apply(r.call, trigger);
        r.upgrade_step(upgrade_failed, uri, std::string(expiry_reason(timer_kind::offer)));
        return std::move(r.out);
      }
      if (!before || !trigger.timer || !is_early(before->status)) return {};
      const number_settings s = view.settings(before->to);
      const std::optional<std::string>* target = nullptr;
      std::string_view reason;
      if (*trigger.timer == timer_kind::invite && s.not_reachable) {
        target = &s.not_reachable;
        reason = reason_unavailable;
      } else if ((*trigger.timer == timer_kind::answer || *trigger.timer == timer_kind::no_answer) && s.no_answer) {
        target = &s.no_answer;
        reason = reason_no_answer;
      }
      if (!target) return {};
      give_way(trigger);
      r.call = *before;
      engine::apply(r.call, trigger);
      r.forward(**target, reason, true);
      return std::move(r.out);
    }
    default:
      return {};
  }
}

}  // namespace engine
