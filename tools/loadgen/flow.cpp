#include "tools/loadgen/flow.hpp"

#include <array>
#include <charconv>

namespace loadgen {

namespace {

constexpr std::array<std::string_view, endpoint_count> endpoint_names{
    "start", "inProgress", "proceeding", "ringing", "connected", "hold",
    "acceptHold", "resume", "acceptResume", "renegotiate", "end"};
constexpr std::array<std::string_view, flow_kind_count> flow_names{"full", "answer", "cancel", "busy", "decline", "start"};

using e = endpoint;
const std::vector<step> full_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
    {e::in_progress, side::mt, true, {}, 200, "InProgress"},
    {e::ringing, side::mt, false, {}, 200, "Ringing"},
    {e::connected, side::mt, true, {}, 200, "Connected"},
    {e::hold, side::mo, true, {}, 200, "Hold"},
    {e::accept_hold, side::mt, true, {}, 200, "Hold"},
    {e::resume, side::mo, true, {}, 200, "Resume"},
    {e::accept_resume, side::mt, true, {}, 200, "Connected"},
    {e::renegotiate, side::mo, true, {}, 200, "Connected"},
    {e::renegotiate, side::mt, true, {}, 200, "Connected"},
    {e::end, side::mo, false, {}, 200, "Terminated"},
};
const std::vector<step> answer_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
    {e::ringing, side::mt, false, {}, 200, "Ringing"},
    {e::connected, side::mt, true, {}, 200, "Connected"},
    {e::end, side::mt, false, {}, 200, "Terminated"},
};
const std::vector<step> cancel_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
    {e::ringing, side::mt, false, {}, 200, "Ringing"},
    {e::end, side::mo, false, {}, 200, "SessionCancelled"},
};
const std::vector<step> busy_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
    {e::end, side::mt, false, "busy", 200, "Busy"},
};
const std::vector<step> decline_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
    {e::ringing, side::mt, false, {}, 200, "Ringing"},
    {e::end, side::mt, false, "declined", 200, "Declined"},
};
const std::vector<step> start_flow{
    {e::start, side::mo, false, {}, 200, "invitation"},
};

}  // namespace

std::string_view to_string(endpoint x) noexcept { return endpoint_names[static_cast<std::size_t>(x)]; }
std::string_view to_string(flow_kind k) noexcept { return flow_names[static_cast<std::size_t>(k)]; }

std::optional<flow_kind> parse_flow_kind(std::string_view s) noexcept {
  for (std::size_t i = 0; i < flow_names.size(); ++i)
    if (flow_names[i] == s) return static_cast<flow_kind>(i);
  return std::nullopt;
}

const std::vector<step>& steps_of(flow_kind k) {
  switch (k) {
    case flow_kind::full: return full_flow;
    case flow_kind::answer: return answer_flow;
    case flow_kind::cancel: return cancel_flow;
    case flow_kind::busy: return busy_flow;
    case flow_kind::decline: return decline_flow;
    case flow_kind::start_only: break;
  }
  return start_flow;
}

std::optional<flow_mix> flow_mix::parse(std::string_view text, std::string& error) {
  flow_mix m;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto colon = item.find(':');
    const std::string_view name = item.substr(0, colon);
    unsigned weight = 1;
    if (colon != std::string_view::npos) {
      const std::string_view w = item.substr(colon + 1);
      const auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), weight);
      if (ec != std::errc{} || p != w.data() + w.size() || weight == 0) {
        error = "weight of '" + std::string(name) + "' must be a positive integer";
        return std::nullopt;
      }
    }
    const auto k = parse_flow_kind(name);
    if (!k) {
      error = "unknown flow '" + std::string(name) + "' (full, answer, cancel, busy, decline, start)";
      return std::nullopt;
    }
    m.entries_.emplace_back(*k, weight);
    m.total_ += weight;
  }
  if (m.entries_.empty()) {
    error = "empty mix";
    return std::nullopt;
  }
  return m;
}

flow_kind flow_mix::pick(std::mt19937_64& rng) const {
  if (entries_.size() == 1) return entries_[0].first;
  auto r = static_cast<unsigned>(rng() % total_);
  for (const auto& [k, w] : entries_) {
    if (r < w) return k;
    r -= w;
  }
  return entries_.back().first;
}

std::string flow_mix::describe() const {
  std::string s;
  for (const auto& [k, w] : entries_) {
    if (!s.empty()) s += ',';
    s += std::string(to_string(k)) + ':' + std::to_string(w);
  }
  return s;
}

double flow_mix::mean_requests() const {
  double n = 0;
  for (const auto& [k, w] : entries_) n += static_cast<double>(w) * static_cast<double>(steps_of(k).size());
  return total_ ? n / total_ : 0;
}

}  // namespace loadgen
