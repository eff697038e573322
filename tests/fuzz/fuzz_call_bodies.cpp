// The bodies of contract §10's call endpoints on arbitrary bytes; the first byte picks
// the decoder (mod 3): decode_transfer_request (POST /transfer), decode_upgrade_request
// (POST /upgradeToMeeting), decode_accept_upgrade_request (POST /acceptUpgrade).
// Properties:
//  - a failure carries a reasonCode and a systemMessage;
//  - transfer: `to` is 6..15 digits; upgrade: no URI, or 1..2048 printable characters;
//  - what was decoded, written back with the json_writer (with an unknown member),
//    decodes to the same value.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/json_writer.hpp"

namespace {

template <class R>
bool refused(const R& r) {
  if (r) return false;
  FUZZ_CHECK(r.error().code != schemas::reason_code::none);
  FUZZ_CHECK(!r.error().message.empty());
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  schemas::json_writer w;
  switch (data[0] % 3) {
    case 0: {
      auto r = schemas::decode_transfer_request(body);
      if (refused(r)) return 0;
      FUZZ_CHECK(r->size() >= 6 && r->size() <= 15);
      for (char c : *r) FUZZ_CHECK(c >= '0' && c <= '9');
      w.begin_object().field("x", 1).field("to", std::string_view("+" + *r)).end_object();
      auto again = schemas::decode_transfer_request(w.str());
      FUZZ_CHECK(again.has_value() && *again == *r);
      break;
    }
    case 1: {
      auto r = schemas::decode_upgrade_request(body);
      if (refused(r)) return 0;
      if (*r) FUZZ_CHECK(schemas::is_printable(**r, schemas::max_meeting_uri_bytes));
      w.begin_object().field("x", 1);
      if (*r) w.field("meetingUri", std::string_view(**r));
      w.end_object();
      auto again = schemas::decode_upgrade_request(w.str());
      FUZZ_CHECK(again.has_value() && *again == *r);
      break;
    }
    default: {
      auto r = schemas::decode_accept_upgrade_request(body);
      if (refused(r)) return 0;
      w.begin_object().field("accept", *r).field("x", 1).end_object();
      auto again = schemas::decode_accept_upgrade_request(w.str());
      FUZZ_CHECK(again.has_value() && *again == *r);
      break;
    }
  }
  return 0;
}
