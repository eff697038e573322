// engine/log.hpp: the two line formats (--log-format text | json).
#include <doctest/doctest.h>

#include <simdjson.h>

#include <string>

#include "engine/log.hpp"

using namespace engine::log;

TEST_CASE("log: text lines start with an ISO 8601 UTC time with milliseconds") {
  // 2026-12-06T10:29:44.789Z
  const std::int64_t t = 1796552984789;
  CHECK(iso8601_utc(t) == "2026-12-06T10:29:44.789Z");
  CHECK(iso8601_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso8601_utc(951782400001) == "2000-02-29T00:00:00.001Z");  // a leap day
  CHECK(iso8601_utc(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_line(format::text, level::info, t, "listening") == "2026-12-06T10:29:44.789Z info  listening\n");
  CHECK(format_line(format::text, level::error, t, "disk full") == "2026-12-06T10:29:44.789Z error disk full\n");
}

TEST_CASE("log: json lines keep their fields: ts (epoch milliseconds), level, msg") {
  const std::string line = format_line(format::json, level::warn, 1796552984789, "a \"quoted\" word\nand a newline");
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // one line: the message's newline is escaped
  simdjson::dom::parser p;
  auto doc = p.parse(line.substr(0, line.size() - 1));
  REQUIRE(doc.error() == simdjson::SUCCESS);
  CHECK(std::int64_t(doc["ts"]) == 1796552984789);
  CHECK(std::string_view(doc["level"]) == "warn");
  CHECK(std::string_view(doc["msg"]) == "a \"quoted\" word\nand a newline");
}
