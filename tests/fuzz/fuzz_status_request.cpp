// decode_status_request on arbitrary bytes; the first byte's low bit is sdp_required.
// Properties:
//  - a failure carries a reasonCode and a systemMessage;
//  - a success with sdp_required has an sdp; any sdp it returns is valid;
//  - accepted with sdp_required => accepted without it, with the same sdp;
//  - the decoded value written back with the json_writer decodes to the same value
//    (and {} / an empty body is "no sdp").
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/json_writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool sdp_required = (data[0] & 1) != 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = schemas::decode_status_request(body, sdp_required);
  if (!r) {
    FUZZ_CHECK(r.error().code != schemas::reason_code::none);
    FUZZ_CHECK(!r.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(!sdp_required || r->sdp.has_value());
  FUZZ_CHECK(!r->sdp || schemas::is_valid_sdp(*r->sdp));
  if (sdp_required) {
    auto relaxed = schemas::decode_status_request(body, false);
    FUZZ_CHECK(relaxed.has_value());
    FUZZ_CHECK(relaxed->sdp == r->sdp);
  }

  schemas::json_writer w;
  w.begin_object();
  if (r->sdp) w.field("sdp", std::string_view(*r->sdp));
  w.end_object();
  auto again = schemas::decode_status_request(w.str(), sdp_required);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->sdp == r->sdp);
  if (!r->sdp) {
    auto empty = schemas::decode_status_request("", false);
    FUZZ_CHECK(empty.has_value() && !empty->sdp);
  }
  return 0;
}
