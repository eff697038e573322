#include "engine/settings.hpp"

#include <algorithm>

#include "engine/decide.hpp"

namespace engine {

const number_settings* settings_directory::find(std::string_view msisdn) const {
  auto it = by_number_.find(msisdn);
  return it == by_number_.end() ? nullptr : &it->second;
}

number_settings settings_directory::of(std::string_view msisdn) const {
  if (const auto* s = find(msisdn)) return *s;
  number_settings d;
  d.msisdn = std::string(msisdn);
  return d;
}

void settings_directory::apply(const event& e) {
  if (e.act != action::settings || !e.accepted() || e.noop || !e.settings) return;
  restore(*e.settings);
  if (auto it = by_number_.find(e.settings->msisdn); it != by_number_.end()) it->second.since = e.seq;
}

void settings_directory::restore(number_settings s) {
  if (s.is_default()) {
    by_number_.erase(s.msisdn);
    return;
  }
  std::string k = s.msisdn;
  by_number_.insert_or_assign(std::move(k), std::move(s));
}

number_settings settings_of(std::string msisdn, schemas::settings_request rules) {
  number_settings s;
  s.msisdn = std::move(msisdn);
  s.call_waiting = rules.call_waiting;
  s.unconditional = std::move(rules.unconditional);
  s.busy = std::move(rules.busy);
  s.no_answer = std::move(rules.no_answer);
  s.no_answer_timeout_s = rules.no_answer_timeout_s;
  s.not_reachable = std::move(rules.not_reachable);
  return s;
}

schemas::settings_request rules_of(const number_settings& s) {
  schemas::settings_request r;
  r.call_waiting = s.call_waiting;
  r.unconditional = s.unconditional;
  r.busy = s.busy;
  r.no_answer = s.no_answer;
  r.no_answer_timeout_s = s.no_answer_timeout_s;
  r.not_reachable = s.not_reachable;
  return r;
}

event decide_settings(const settings_directory& dir, const command& cmd, epoch_ms now) {
  event e = make_event(cmd, now);
  e.msisdn = cmd.to;  // audited under the number whose settings these are
  e.actor_role = role::stranger;
  if (cmd.input_error != reason_code::none) {
    e.rejected = cmd.input_error;
    return e;
  }
  const auto& mine = cmd.who.msisdns;
  if (cmd.who.gateway || std::find(mine.begin(), mine.end(), cmd.to) == mine.end() || !cmd.settings) {
    e.rejected = reason_code::forbidden;
    return e;
  }
  number_settings s = *cmd.settings;
  s.msisdn = cmd.to;
  s.since = 0;  // the event's seq, set when folded
  if (!s.no_answer) s.no_answer_timeout_s = number_settings{}.no_answer_timeout_s;
  if (dir.of(cmd.to).same_rules(s)) e.noop = true;
  e.settings = std::move(s);
  return e;
}

}  // namespace engine
