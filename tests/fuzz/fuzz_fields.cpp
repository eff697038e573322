// The small input checks of schemas/api.hpp on arbitrary bytes. Properties:
//  - normalize_msisdn: a result is 6..15 ASCII digits, equals the input minus one
//    optional leading '+', and is a fixed point (normalizing it again gives itself);
//  - is_valid_guid: yes => 36 characters (or 38 in braces), dashes at 8/13/18/23,
//    hex digits elsewhere; the upper- and lower-cased spellings are valid too;
//  - is_printable(s, max): yes => 1..max bytes, each 0x20..0x7E.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

namespace {

bool hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

void check_msisdn(std::string_view s) {
  auto n = schemas::normalize_msisdn(s);
  if (!n) return;
  FUZZ_CHECK(n->size() >= 6 && n->size() <= 15);
  for (char c : *n) FUZZ_CHECK(c >= '0' && c <= '9');
  FUZZ_CHECK(*n == s || ("+" + *n) == s);
  FUZZ_CHECK(schemas::normalize_msisdn(*n) == n);
  FUZZ_CHECK(schemas::normalize_msisdn("+" + *n) == n);
}

void check_guid(std::string_view s) {
  if (!schemas::is_valid_guid(s)) return;
  std::string_view g = s;
  if (g.size() == 38) {
    FUZZ_CHECK(g.front() == '{' && g.back() == '}');
    g = g.substr(1, 36);
  }
  FUZZ_CHECK(g.size() == 36);
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) FUZZ_CHECK(g[i] == '-');
    else FUZZ_CHECK(hex(g[i]));
  }
  std::string up(s), low(s);
  for (auto& c : up) if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
  for (auto& c : low) if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  FUZZ_CHECK(schemas::is_valid_guid(up) && schemas::is_valid_guid(low));
}

void check_printable(std::string_view s, std::size_t max) {
  if (!schemas::is_printable(s, max)) return;
  FUZZ_CHECK(!s.empty() && s.size() <= max);
  for (char c : s) FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  check_msisdn(s);
  check_guid(s);
  check_printable(s, schemas::max_client_correlator);
  check_printable(s, 8);
  return 0;
}
