// base64url (RFC 4648 §5, JOSE flavour) on arbitrary bytes. Properties:
//  - decode accepts only canonical text (no padding, no 4k+1 length, zero unused
//    bits), so decode(t) succeeding means encode(decode(t)) == t;
//  - the decoded length is floor(3 * |t| / 4);
//  - for any bytes b: encode(b) uses only [A-Za-z0-9_-], has length ceil(4|b|/3),
//    and decode(encode(b)) == b.
#include "schemas/base64url.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto decoded = schemas::base64url_decode(in)) {
    FUZZ_CHECK(decoded->size() == in.size() * 3 / 4);
    FUZZ_CHECK(schemas::base64url_encode(*decoded) == in);
  }

  const std::string text = schemas::base64url_encode(in);
  FUZZ_CHECK(text.size() == (in.size() * 4 + 2) / 3);
  for (char c : text)
    FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_');
  auto back = schemas::base64url_decode(text);
  FUZZ_CHECK(back.has_value() && *back == in);
  return 0;
}
