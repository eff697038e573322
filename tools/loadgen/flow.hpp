#pragma once
// The call flows yna-loadgen drives: each one a fixed list of steps, each step one
// request by one party, the status it must get, and the notification the other party
// must then receive (contract §1, §4, §5).
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

enum class side : std::uint8_t { mo, mt };

// The endpoints, in a fixed order: the per-endpoint statistics are indexed by it.
enum class endpoint : std::uint8_t {
  start, in_progress, proceeding, ringing, connected, hold, accept_hold, resume, accept_resume, renegotiate, end,
};
inline constexpr std::size_t endpoint_count = 11;
std::string_view to_string(endpoint e) noexcept;  // the path segment: "start", "inProgress", …

struct step {
  endpoint ep;
  side by;
  bool sdp = false;         // body {"sdp":…}; otherwise no body (start has its own)
  std::string_view reason;  // DELETE /end: the `reason` header, when not empty
  int expect_status = 200;
  // What the other party's socket must receive: "invitation" or a SessionStatus.
  std::string_view notify;
};

enum class flow_kind : std::uint8_t { full, answer, cancel, busy, decline, start_only };
inline constexpr std::size_t flow_kind_count = 6;
std::string_view to_string(flow_kind k) noexcept;
std::optional<flow_kind> parse_flow_kind(std::string_view s) noexcept;

// full:   start, inProgress, ringing, connected, hold, acceptHold, resume, acceptResume,
//         renegotiate (MO's offer), renegotiate (MT's answer), end by MO → Terminated
// answer: start, ringing, connected, end by MT → Terminated
// cancel: start, ringing, end by MO before the answer → SessionCancelled
// busy:   start, end by MT with `reason: busy` → Busy
// decline: start, ringing, end by MT with `reason: declined` → Declined
// start:  start only (the call stays ringing): the /start benchmark
const std::vector<step>& steps_of(flow_kind k);

// A weighted choice of flows, e.g. "full:6,answer:2,cancel:1,busy:1" or "full".
class flow_mix {
 public:
  // Fails (nullopt, with `error` set) on an unknown flow name or a weight that is not a
  // positive integer.
  static std::optional<flow_mix> parse(std::string_view text, std::string& error);
  flow_kind pick(std::mt19937_64& rng) const;
  std::string describe() const;
  bool only(flow_kind k) const { return entries_.size() == 1 && entries_[0].first == k; }
  // Requests one call of this mix makes on average.
  double mean_requests() const;

 private:
  std::vector<std::pair<flow_kind, unsigned>> entries_;
  unsigned total_ = 0;
};

}  // namespace loadgen
