// is_valid_sdp on arbitrary bytes. Properties when it says yes (contract §3, RFC 8866):
//  - at most 64 KiB, no NUL byte;
//  - starts with "v=0" and contains "\no=", "\ns=", "\nt=" and "\nm=";
//  - the same text with CRLF line ends turned into LF is valid too.
#include "schemas/api.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sdp(reinterpret_cast<const char*>(data), size);
  if (!schemas::is_valid_sdp(sdp)) return 0;
  FUZZ_CHECK(sdp.size() <= schemas::max_sdp_bytes);
  FUZZ_CHECK(sdp.find('\0') == std::string_view::npos);
  FUZZ_CHECK(sdp.substr(0, 3) == "v=0");
  for (std::string_view line : {"\no=", "\ns=", "\nt=", "\nm="}) FUZZ_CHECK(sdp.find(line) != std::string_view::npos);

  std::string lf;
  lf.reserve(sdp.size());
  for (std::size_t i = 0; i < sdp.size(); ++i) {
    if (sdp[i] == '\r' && i + 1 < sdp.size() && sdp[i + 1] == '\n') continue;
    lf.push_back(sdp[i]);
  }
  FUZZ_CHECK(schemas::is_valid_sdp(lf));
  return 0;
}
