#include "schemas/base64url.hpp"

#include <doctest/doctest.h>

#include <string>

using schemas::base64url_decode;
using schemas::base64url_encode;

TEST_CASE("base64url: RFC 4648 test vectors, unpadded") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},          {"f", "Zg"},         {"fo", "Zm8"},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CAPTURE(plain);
    CHECK(base64url_encode(plain) == encoded);
    const auto decoded = base64url_decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == plain);
  }
}

TEST_CASE("base64url: uses '-' and '_' instead of '+' and '/'") {
  CHECK(base64url_encode("\xfb\xff") == "-_8");
  CHECK(base64url_encode("\xfb\xef\xbe") == "----");
  CHECK(base64url_decode("-_8") == std::string("\xfb\xff"));
}

TEST_CASE("base64url: every byte value round-trips") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= all.size(); len += 37) {
    const auto part = all.substr(all.size() - len);
    const auto decoded = base64url_decode(base64url_encode(part));
    REQUIRE(decoded.has_value());
    CHECK(*decoded == part);
  }
}

TEST_CASE("base64url: rejects what is not canonical unpadded base64url") {
  SUBCASE("padding") { CHECK_FALSE(base64url_decode("Zg==").has_value()); }
  SUBCASE("standard alphabet") {
    CHECK_FALSE(base64url_decode("+/8").has_value());
    CHECK_FALSE(base64url_decode("ab/c").has_value());
  }
  SUBCASE("whitespace and other characters") {
    CHECK_FALSE(base64url_decode("Zm9 v").has_value());
    CHECK_FALSE(base64url_decode("Zm9v\n").has_value());
    CHECK_FALSE(base64url_decode("Zm9.").has_value());
    CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4)).has_value());
  }
  SUBCASE("impossible length 4k+1") {
    CHECK_FALSE(base64url_decode("Z").has_value());
    CHECK_FALSE(base64url_decode("Zm9vY").has_value());
  }
  SUBCASE("non-zero unused bits") {
    CHECK(base64url_decode("Zg").has_value());
    CHECK_FALSE(base64url_decode("Zh").has_value());
    CHECK_FALSE(base64url_decode("Zm9").has_value());  // '9' leaves bits set
    CHECK(base64url_decode("Zm8").has_value());
  }
}
