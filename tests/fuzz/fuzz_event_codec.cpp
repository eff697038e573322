// decode_event on arbitrary bytes (a corrupted or hostile log record). Properties:
//  - a failure is malformed or unsupported_version, never a crash; a record whose "v"
//    is not 1 is never decoded;
//  - a decoded event re-encodes to a record that decodes again, and that second
//    encoding is byte-for-byte the first (encode . decode is a fixed point);
//  - the encoding is valid JSON with the keys in the documented order.
#include "engine/codec.hpp"

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto e = engine::decode_event(bytes);
  if (e) {  // only version 1 is read: any other "v" (as JSON says it) is refused
    static simdjson::dom::parser parser;
    std::uint64_t v = 0;
    if (parser.parse(bytes.data(), bytes.size())["v"].get_uint64().get(v) == simdjson::SUCCESS) FUZZ_CHECK(v == 1);
  }
  if (!e) {
    FUZZ_CHECK(e.error() == engine::codec_error::malformed || e.error() == engine::codec_error::unsupported_version);
    return 0;
  }
  FUZZ_CHECK(e->version == engine::event::current_version);
  const std::string once = engine::encode_event(*e);
  auto e2 = engine::decode_event(once);
  if (!e2) std::fprintf(stderr, "re-encoded event does not decode: %s\n", once.c_str());
  FUZZ_CHECK(e2.has_value());
  const std::string twice = engine::encode_event(*e2);
  if (once != twice) std::fprintf(stderr, "once:  %s\ntwice: %s\n", once.c_str(), twice.c_str());
  FUZZ_CHECK(once == twice);
  FUZZ_CHECK(e2->accepted() == e->accepted() && e2->rejected == e->rejected);
  FUZZ_CHECK(e2->seq == e->seq && e2->time == e->time && e2->act == e->act && e2->call_id == e->call_id);
  FUZZ_CHECK(e2->sdp == e->sdp && e2->client_correlator == e->client_correlator && e2->prev_hash == e->prev_hash);
  FUZZ_CHECK(e2->timer == e->timer && e2->arms == e->arms);
  FUZZ_CHECK(!e->timer || e2->timer_deadline == e->timer_deadline);

  // Keys in the documented order; "timer" and "arms" only when the event has them.
  struct key {
    std::string_view name;
    bool present;
  };
  const key order[] = {{"v", true},       {"seq", true},     {"time", true},          {"type", true},
                       {"callId", true},  {"timer", e->timer.has_value()}, {"actor", true}, {"txn", true},
                       {"method", true},  {"path", true},    {"payload", true},       {"outcome", true},
                       {"arms", e->arms.any()}, {"prev", true}};
  simdjson::dom::parser parser;
  simdjson::dom::object obj;
  FUZZ_CHECK(parser.parse(once).get_object().get(obj) == simdjson::SUCCESS);
  std::size_t i = 0;
  for (auto field : obj) {
    while (i < std::size(order) && !order[i].present) ++i;
    FUZZ_CHECK(i < std::size(order));
    FUZZ_CHECK(order[i].name == field.key);
    ++i;
  }
  while (i < std::size(order) && !order[i].present) ++i;
  FUZZ_CHECK(i == std::size(order));
  return 0;
}
