#pragma once
// Push registrations (contract §13) in the fold: which devices can be woken through a
// push gateway when they have no notification socket open. Registrations are events
// (register_pusher, unregister_pusher); decide_pusher turns a command into one, the
// directory folds them. Pure: no clock, no I/O.
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/types.hpp"
#include "schemas/result.hpp"

namespace engine {

struct pusher_limits {
  std::size_t max_per_sub = 8;        // --max-pushers-per-sub: registrations of one subject
  std::size_t max_pushkey_bytes = 512;
  std::size_t max_data_bytes = 4096;  // the `data` object as JSON text
};

// The reason of the engine's own removals.
inline constexpr std::string_view pusher_expired_reason = "expired";
inline constexpr std::string_view pusher_rejected_reason = "rejected";

// Every registration, by device, with the indexes push delivery and expiry need. One thread.
class pusher_directory {
 public:
  using key = std::pair<std::string, std::string>;  // (sub, device_id)

  const pusher* find(std::string_view sub, std::string_view device_id) const;
  std::size_t count(std::string_view sub) const;
  // The registrations whose token had `msisdn`, in no particular order.
  std::vector<const pusher*> for_number(std::string_view msisdn) const;
  // Registrations expired at `now`, the earliest first, at most `limit`.
  std::vector<key> expired(epoch_ms now, std::size_t limit) const;
  std::size_t size() const noexcept { return by_device_.size(); }
  const std::map<key, pusher>& all() const noexcept { return by_device_; }

  // Folds an accepted, state-changing pusher event; others change nothing.
  void apply(const event& e);
  // Puts a registration as it is (loading the persisted state).
  void restore(pusher p);

 private:
  void put(pusher p);
  void erase(const key& k);

  std::map<key, pusher> by_device_;
  std::unordered_map<std::string, std::size_t> per_sub_;
  std::unordered_map<std::string, std::set<key>> by_number_;
  std::set<std::tuple<epoch_ms, std::string, std::string>> by_expiry_;
};

// Decides a pusher command into one event, on the directory as it is:
// - register_pusher: the token's device (sub, device_id; 403 FORBIDDEN without a
//   device_id) is registered for the token's numbers, replacing its earlier registration;
//   429 TOO_MANY_PUSHERS when the subject has max_per_sub other devices registered.
// - unregister_pusher by a request: the device must be the token's own (403 FORBIDDEN);
//   a device not registered is a noop (DELETE is idempotent).
// - unregister_pusher by the engine (cmd.by_engine): cmd.push names the device and
//   cmd.reason says why ("expired": its expires_at has passed at `now`; "rejected": the
//   gateway refused cmd.push->pushkey, which must still be the registered one). A
//   registration that no longer matches is rejected CALL_NOT_FOUND (the reactor drops it
//   unwritten, as a superseded timer).
event decide_pusher(const pusher_directory& dir, const command& cmd, epoch_ms now, const pusher_limits& limits = {});

// The pusher's record in the persisted state (JSON), and back.
std::string encode_pusher(const pusher& p);
schemas::result<pusher, int> decode_pusher(std::string_view bytes);

}  // namespace engine
