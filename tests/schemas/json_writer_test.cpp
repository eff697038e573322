#include "schemas/json_writer.hpp"

#include <doctest/doctest.h>

using schemas::json_writer;

TEST_CASE("json_writer: nesting and commas") {
  json_writer w;
  w.begin_object().field("a", 1).key("b").begin_array().value("x").value(true).null().begin_object().end_object();
  w.end_array().field("c", std::uint64_t{18446744073709551615ull}).end_object();
  CHECK(w.str() == R"({"a":1,"b":["x",true,null,{}],"c":18446744073709551615})");
}

TEST_CASE("json_writer: escapes control characters, quotes and invalid UTF-8") {
  std::string out;
  schemas::append_json_string(out, std::string("q\"b\\n\n\x01", 7));
  CHECK(out == R"("q\"b\\n\n\u0001")");
  out.clear();
  schemas::append_json_string(out, "caf\xC3\xA9 \xF0\x9F\x93\x9E");  // valid 2- and 4-byte sequences pass through
  CHECK(out == "\"caf\xC3\xA9 \xF0\x9F\x93\x9E\"");
  out.clear();
  schemas::append_json_string(out, "a\xFF" "b\xC0\xAF");  // invalid byte and overlong '/'
  CHECK(out == "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\"");
}
