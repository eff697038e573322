// json_writer's string escaping on arbitrary bytes. Properties:
//  - the output is a valid JSON document (simdjson parses it) holding one string;
//  - valid UTF-8 in => the parsed string is exactly the input;
//  - invalid UTF-8 in => the parsed string is valid UTF-8 (bad bytes became U+FFFD);
//  - a small document built with the writer around it parses back with the same
//    values (commas and keys in the right places).
#include "schemas/json_writer.hpp"

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  static simdjson::dom::parser parser;

  std::string out;
  schemas::append_json_string(out, in);
  std::string_view parsed;
  FUZZ_CHECK(parser.parse(out).get_string().get(parsed) == simdjson::SUCCESS);
  const bool valid = simdjson::validate_utf8(in.data(), in.size());
  if (valid) FUZZ_CHECK(parsed == in);
  FUZZ_CHECK(simdjson::validate_utf8(parsed.data(), parsed.size()));

  schemas::json_writer w;
  w.begin_object().field("k", in).key(in).begin_array().value(std::int64_t{-7}).value(in).null();
  w.value(true).begin_object().end_object().end_array().field("n", std::uint64_t{18446744073709551615u});
  w.end_object();
  simdjson::dom::object obj;
  FUZZ_CHECK(parser.parse(w.str()).get_object().get(obj) == simdjson::SUCCESS);
  FUZZ_CHECK(obj.size() == 3);
  // The fuzzed key may spell "k" or "n" (directly or after U+FFFD replacement): then
  // the object has that key twice and lookups find the first one.
  std::string fuzzed_key;
  schemas::append_json_string(fuzzed_key, in);
  const bool clash = fuzzed_key == "\"k\"" || fuzzed_key == "\"n\"";
  std::string_view k;
  FUZZ_CHECK(obj["k"].get_string().get(k) == simdjson::SUCCESS);
  if (valid) FUZZ_CHECK(k == in);
  std::uint64_t n = 0;
  if (!clash) FUZZ_CHECK(obj["n"].get_uint64().get(n) == simdjson::SUCCESS && n == 18446744073709551615u);
  if (valid && !clash) {
    simdjson::dom::array arr;
    FUZZ_CHECK(obj[in].get_array().get(arr) == simdjson::SUCCESS);
    FUZZ_CHECK(arr.size() == 5);
  }
  return 0;
}
