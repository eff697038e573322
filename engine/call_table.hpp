#pragma once
// call_table: every call the engine knows, and the fold that builds them from the log.
// Owned by one thread (the reactor, or a tool replaying the log); not thread-safe.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/pushers.hpp"
#include "engine/settings.hpp"
#include "engine/types.hpp"

namespace engine {

class call_table {
 public:
  // What a retire event does (contract §9). drop: the call leaves the table and its
  // indexes (the engine). keep: the call stays, marked retired (tools that report on
  // every call of the log: replay, cdr).
  enum class on_retire : std::uint8_t { drop, keep };
  call_table() = default;
  explicit call_table(on_retire r) : on_retire_(r) {}

  // nullptr when unknown.
  const call_state* find(std::string_view call_id) const;
  // The call whose MO party (mo_party: `from`, or "gw:<sub>" for a gateway's call) started
  // it with this clientCorrelator, or nullptr.
  const call_state* find_start(std::string_view from, std::string_view client_correlator) const;

  // Folds one committed event (any outcome). Events must arrive in seq order; the
  // table remembers the last seq it folded.
  void apply(const event& e);

  // Puts a call as it is (loading the persisted state).
  void restore(call_state c, event_seq last_seq);
  // The push registrations (contract §13): folded by apply() like the calls.
  const pusher_directory& pushers() const noexcept { return pushers_; }
  void restore_pusher(pusher p) { pushers_.restore(std::move(p)); }
  // The numbers' settings (contract §10): folded by apply() like the calls.
  const settings_directory& settings() const noexcept { return settings_; }
  void restore_settings(number_settings s) { settings_.restore(std::move(s)); }
  void restore_last_seq(event_seq s) noexcept { if (s > last_seq_) last_seq_ = s; }

  // Calls still ringing `msisdn` (early status, it is their MT), oldest first.
  std::vector<const call_state*> ringing(std::string_view msisdn) const;
  // The counts the call caps need (contract §3a), O(1): calls ringing `msisdn` (as above),
  // and calls not ended whose MO party is `msisdn` (a number, or a gateway's party).
  std::size_t ringing_count(std::string_view msisdn) const;
  std::size_t live_from_count(std::string_view msisdn) const;
  // Contract §10: calls Connected or on Hold that `msisdn` is a party of (busy when > 0),
  // and calls still ringing it with callWaiting (one at most is let in).
  std::size_t engaged_count(std::string_view msisdn) const;
  std::size_t waiting_count(std::string_view msisdn) const;

  event_seq last_seq() const noexcept { return last_seq_; }
  std::size_t size() const noexcept { return calls_.size(); }
  std::size_t active() const noexcept { return active_; }  // not ended
  std::size_t retired() const noexcept { return retired_; }  // retire events folded
  const std::unordered_map<std::string, call_state>& calls() const noexcept { return calls_; }

 private:
  pusher_directory pushers_;
  settings_directory settings_;
  static std::string start_key(std::string_view from, std::string_view correlator);
  void index(const call_state& c);
  // What of a call's state the counts and indexes below depend on (its parties but MT
  // never change).
  struct index_key {
    call_status status;
    std::string to;
    bool call_waiting;
  };
  static index_key key_of(const call_state& c);
  static bool same_index(const index_key& k, const call_state& c);
  void track(const call_state& c, const index_key& k, int sign);

  std::unordered_map<std::string, call_state> calls_;
  std::unordered_map<std::string, std::string> starts_;  // from '\0' correlator -> call id
  // MT -> start seq -> call id (a start seq names one call: no string compares)
  std::unordered_map<std::string, std::map<event_seq, std::string>> ringing_;
  // MO -> calls not ended (entries at 0 are erased)
  std::unordered_map<std::string, std::size_t> live_from_;
  std::unordered_map<std::string, std::size_t> engaged_;      // number -> calls Connected or Hold
  std::unordered_map<std::string, std::size_t> waiting_for_;  // MT -> early calls with callWaiting
  std::size_t active_ = 0;
  std::size_t retired_ = 0;
  event_seq last_seq_ = 0;
  on_retire on_retire_ = on_retire::drop;
};

// One call folded from its events in log order (any outcomes; events of other calls are
// ignored): what call_table::apply makes of it, retired flag included. nullopt when no
// event in `events` starts a call. A retired call read back from the log (contract §9).
// `base`: the call's state before `events` (its archived state, when its first events
// were archived): the fold starts from it.
std::optional<call_state> fold_call(const std::vector<event>& events, std::optional<call_state> base = std::nullopt);

}  // namespace engine
