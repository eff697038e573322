// decode_start_request on arbitrary bytes. Properties:
//  - a failure carries a reasonCode and a systemMessage;
//  - a success obeys the contract's input rules (§3): to/from 6..15 digits and
//    different, sdp valid, clientCorrelator 1..256 printable, transferOf (contract §10)
//    a callId (1..128 of [A-Za-z0-9._~-]);
//  - what was decoded, written back with the json_writer (fields in another order,
//    '+' on the numbers, an unknown field), decodes again to the same values.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/json_writer.hpp"

namespace {

bool digits(std::string_view s) {
  if (s.size() < 6 || s.size() > 15) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string reencode(const schemas::start_request& r, bool variant) {
  schemas::json_writer w;
  w.begin_object();
  if (!variant) {
    w.field("to", std::string_view(r.to)).field("from", std::string_view(r.from));
    w.field("sdp", std::string_view(r.sdp));
    if (r.client_correlator) w.field("clientCorrelator", std::string_view(*r.client_correlator));
    if (r.transfer_of) w.field("transferOf", std::string_view(*r.transfer_of));
  } else {
    if (r.transfer_of) w.field("transferOf", std::string_view(*r.transfer_of));
    w.field("unknown", "ignored").key("nested").begin_array().value(1).null().end_array();
    if (r.client_correlator) w.field("clientCorrelator", std::string_view(*r.client_correlator));
    w.field("sdp", std::string_view(r.sdp));
    w.field("from", std::string_view("+" + r.from)).field("to", std::string_view("+" + r.to));
  }
  w.end_object();
  return w.take();
}

void same(const schemas::start_request& a, const schemas::start_request& b) {
  FUZZ_CHECK(a.to == b.to);
  FUZZ_CHECK(a.from == b.from);
  FUZZ_CHECK(a.sdp == b.sdp);
  FUZZ_CHECK(a.client_correlator == b.client_correlator);
  FUZZ_CHECK(a.transfer_of == b.transfer_of);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = schemas::decode_start_request(body);
  if (!r) {
    FUZZ_CHECK(r.error().code != schemas::reason_code::none);
    FUZZ_CHECK(!r.error().message.empty());
    return 0;
  }
  const schemas::start_request& req = *r;
  FUZZ_CHECK(digits(req.to));
  FUZZ_CHECK(digits(req.from));
  FUZZ_CHECK(req.to != req.from);
  FUZZ_CHECK(schemas::is_valid_sdp(req.sdp));
  FUZZ_CHECK(!req.client_correlator || schemas::is_printable(*req.client_correlator, schemas::max_client_correlator));
  if (req.transfer_of) {
    FUZZ_CHECK(!req.transfer_of->empty() && req.transfer_of->size() <= 128);
    for (char c : *req.transfer_of)
      FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '~' || c == '-');
  }

  for (bool variant : {false, true}) {
    const std::string again = reencode(req, variant);
    auto r2 = schemas::decode_start_request(again);
    if (!r2) std::fprintf(stderr, "re-encoded request refused: %s\n%s\n", r2.error().message.c_str(), again.c_str());
    FUZZ_CHECK(r2.has_value());
    same(req, *r2);
  }
  return 0;
}
