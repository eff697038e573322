#pragma once
// Per-number settings (contract §10) in the fold: call waiting and the four forwarding
// rules. Settings are events (action::settings): decide_settings turns a PUT into one, the
// directory folds them, and routing (engine/routing.hpp) reads them when it decides where
// a call goes. Pure: no clock, no I/O. A number without a record has the defaults.
#include <map>
#include <string>
#include <string_view>

#include "engine/types.hpp"
#include "schemas/api.hpp"
#include "schemas/result.hpp"

namespace engine {

class settings_directory {
 public:
  // The number's settings, or nullptr when it has the defaults.
  const number_settings* find(std::string_view msisdn) const;
  // The number's settings, the defaults when it has no record.
  number_settings of(std::string_view msisdn) const;
  std::size_t size() const noexcept { return by_number_.size(); }
  const std::map<std::string, number_settings, std::less<>>& all() const noexcept { return by_number_; }

  // Folds an accepted, state-changing settings event; others change nothing.
  void apply(const event& e);
  // Puts a record as it is (loading the persisted state).
  void restore(number_settings s);

 private:
  std::map<std::string, number_settings, std::less<>> by_number_;
};

// Decides PUT /settings/{msisdn}: the token must own the number (403 FORBIDDEN; a
// gateway owns none); the same rules as now is a noop. cmd.settings carries the rules
// (decoded by transport; its input_error when they were not valid), cmd.to the number.
event decide_settings(const settings_directory& dir, const command& cmd, epoch_ms now);

// The API's shape of the rules (PUT body decoded, GET body to encode) and the fold's, one
// to the other.
number_settings settings_of(std::string msisdn, schemas::settings_request rules);
schemas::settings_request rules_of(const number_settings& s);

// The record in the persisted state (JSON), and back.
std::string encode_settings_record(const number_settings& s);
schemas::result<number_settings, int> decode_settings_record(std::string_view bytes);

}  // namespace engine
