#pragma once
// The call state machine: decide() turns a command into exactly one event (accepted or
// rejected); apply() folds an accepted event into call state. Both are pure functions
// of their arguments: no clock, no randomness, no I/O. The table they implement is in
// engine/README.md and tests/engine/transition_test.cpp checks every cell of it.
#include "engine/types.hpp"

namespace engine {

// The role `who` plays on `call` for `act`. A token that owns both numbers of a call
// is resolved by the action (see engine/README.md, "Tokens that own both numbers").
role resolve_role(const call_state& call, const actor& who, action act);

// Copies the call's parties and their names into `e` (every event of a call names them:
// the log indexes it under both numbers, and its notification derives from it alone).
void name_parties(event& e, const call_state& c);

// The event skeleton every decision starts from: who, what, when, and the command's
// payload (seq 0, not yet accepted or rejected).
event make_event(const command& cmd, epoch_ms now);

// Decides one command.
// - For action::start, `call` is the existing call with the same (from, clientCorrelator)
//   when there is one (idempotent repeat), else nullptr.
// - For every other action, `call` is the call named by cmd.call_id, or nullptr.
// - For action::timeout (made by the reactor, never by a request), `call` is the call
//   whose cmd.timer expired. The timer must still be armed with a deadline at or before
//   `now`; otherwise the event is rejected INVALID_STATE (the reactor drops it unwritten:
//   a request decided first disarmed the timer, and the log shows only that request).
// The returned event has seq 0 (the reactor numbers events when they are written) and
// time `now`. Accepted events that arm timers record their absolute deadlines, computed
// from `timers` (contract §7).
// For a /start that is not an idempotent repeat, `limits` applies the call caps of
// contract §3a (after input and owner checks): `calls_from` calls not ended from
// cmd.from at or over caps.max_calls_per_number → rejected TOO_MANY_CALLS; `ringing_to`
// calls ringing cmd.to at or over caps.max_ringing_per_number → accepted, but the call
// ends at once: status_after Busy, reason "too-many-calls", no timers armed. The counts
// are the caller's (the reactor: call table plus starts decided and not yet applied); the
// outcome is in the event, so replay never counts again.
struct start_limits {
  call_caps caps;
  std::size_t calls_from = 0;  // calls not ended whose MO is cmd.from
  std::size_t ringing_to = 0;  // calls ringing cmd.to (early, cmd.to their MT)
  // A /start with transferOf (contract §10): the transferred call, nullptr when unknown.
  // Accepted only from its remaining party, to its transfer target, within
  // timers.offer_ms of the transfer (else CALL_NOT_FOUND, WRONG_PARTY, INVALID_FIELD,
  // INVALID_STATE); the invitation's diversionAddress is the transferring party.
  const call_state* transferred = nullptr;
};
event decide(const call_state* call, const command& cmd, epoch_ms now, const timer_settings& timers = {},
             const start_limits& limits = {});

// The armed timer of `call` whose deadline is at or before `now`, the earliest first;
// nullopt when none has expired. A request on a call with an expired timer must wait for
// the expiry to be decided first: a deadline that has passed always wins over a request
// decided after it.
std::optional<timer_kind> due_timer(const call_state& call, epoch_ms now);

// A sentence for ErrorInfo's systemMessage explaining why `e` was rejected, given the
// call as it was when decided (nullptr for unknown calls and /start).
std::string explain_rejection(const event& e, const call_state* call);

// Folds an accepted, state-changing event into `call` (for start: `call` is a fresh
// value to fill). Rejected and noop events leave the call unchanged.
void apply(call_state& call, const event& e);

}  // namespace engine
