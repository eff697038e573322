#include "schemas/digest.hpp"

#include <doctest/doctest.h>

#include <string>

using schemas::sha256;
using schemas::sha256_hasher;
using schemas::to_hex;

// FIPS 180-2 / NIST CAVP known answers.
TEST_CASE("digest: SHA-256 known vectors") {
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(to_hex(sha256(std::string(1000000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("digest: binary input with NUL bytes is hashed whole") {
  CHECK(sha256(std::string("a\0b", 3)) != sha256("a"));
  CHECK(sha256(std::string("a\0b", 3)) == sha256(std::string("a\0b", 3)));
}

TEST_CASE("digest: incremental hasher equals one-shot and is reusable") {
  sha256_hasher h;
  h.update("abcdbcdecdefdefg");
  h.update("");
  h.update("efghfghighijhijkijkljklmklmnlmnomnopnopq");
  CHECK(to_hex(h.finish()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

  SUBCASE("after finish the hasher starts over") {
    h.update("abc");
    CHECK(h.finish() == sha256("abc"));
    CHECK(h.finish() == sha256(""));
  }
  SUBCASE("moved-to hasher keeps working") {
    sha256_hasher moved = std::move(h);
    moved.update("a");
    moved.update("bc");
    CHECK(moved.finish() == sha256("abc"));
  }
}

TEST_CASE("digest: to_hex is lower case and 64 characters; to_bytes is the raw 32") {
  const auto d = sha256("abc");
  const auto hex = to_hex(d);
  CHECK(hex.size() == 64);
  CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
  const auto bytes = schemas::to_bytes(d);
  REQUIRE(bytes.size() == 32);
  CHECK(static_cast<unsigned char>(bytes[0]) == 0xba);
  CHECK(static_cast<unsigned char>(bytes[31]) == 0xad);
}
