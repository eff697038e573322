// decode_pusher_request (POST /pushers, contract §13) on arbitrary bytes. Properties:
//  - a failure carries a reasonCode and a systemMessage;
//  - a success keeps the limits: url 1..2048, appId printable 1..256, pushkey 1..512
//    bytes, data empty or a JSON object of at most 4 KiB;
//  - the decoded value written back with the json_writer decodes to the same value.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "schemas/json_writer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = schemas::decode_pusher_request(body);
  if (!r) {
    FUZZ_CHECK(r.error().code != schemas::reason_code::none);
    FUZZ_CHECK(!r.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(!r->url.empty() && r->url.size() <= schemas::max_push_url_bytes);
  FUZZ_CHECK(schemas::is_printable(r->app_id, schemas::max_app_id_bytes));
  FUZZ_CHECK(!r->pushkey.empty() && r->pushkey.size() <= schemas::max_pushkey_bytes);
  FUZZ_CHECK(r->data.size() <= schemas::max_push_data_bytes);
  FUZZ_CHECK(r->data.empty() || (r->data.front() == '{' && r->data.back() == '}'));

  schemas::json_writer w;
  w.begin_object();
  w.field("url", std::string_view(r->url)).field("appId", std::string_view(r->app_id));
  w.field("pushkey", std::string_view(r->pushkey));
  if (!r->data.empty()) w.key("data").raw(r->data);
  w.end_object();
  auto again = schemas::decode_pusher_request(w.str());
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->url == r->url && again->app_id == r->app_id && again->pushkey == r->pushkey);
  FUZZ_CHECK(again->data == r->data);
  return 0;
}
