// decode_settings_request (PUT /settings/{msisdn}, contract §10) on arbitrary bytes, for
// the number 14250000001. Properties:
//  - a failure carries a reasonCode and a systemMessage that names a field or the body;
//  - a success keeps the rules: every target is 6..15 digits and not the number itself,
//    the noAnswer timeout is 5..300 seconds;
//  - what GET /settings answers for it (encode_settings) decodes, as a PUT body, to the
//    same settings.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

constexpr std::string_view self = "14250000001";

bool digits(const std::optional<std::string>& n) {
  if (!n) return true;
  if (n->size() < 6 || n->size() > 15 || *n == self) return false;
  for (char c : *n)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = schemas::decode_settings_request(body, self);
  if (!r) {
    FUZZ_CHECK(r.error().code != schemas::reason_code::none);
    FUZZ_CHECK(!r.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(digits(r->unconditional) && digits(r->busy) && digits(r->no_answer) && digits(r->not_reachable));
  FUZZ_CHECK(r->no_answer_timeout_s >= schemas::min_no_answer_timeout_s &&
             r->no_answer_timeout_s <= schemas::max_no_answer_timeout_s);
  const std::string shown = schemas::encode_settings(self, *r);
  auto again = schemas::decode_settings_request(shown, self);
  FUZZ_CHECK(again.has_value());
  schemas::settings_request want = *r;
  if (!want.no_answer) want.no_answer_timeout_s = again->no_answer_timeout_s;  // no rule, no timeout
  FUZZ_CHECK(*again == want);
  return 0;
}
