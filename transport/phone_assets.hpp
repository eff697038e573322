#pragma once
// The web softphone's static files (transport/phone/), embedded in the binary at build
// time by transport/phone/embed.py so that yna-engine stays one file (contract §8).
// The table is generated (phone_assets.cpp in the build folder) and immutable.
#include <string_view>

namespace transport {

struct phone_asset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view bytes;
};

// The file called `name` (no folders), or nullptr. Any thread.
const phone_asset* find_phone_asset(std::string_view name) noexcept;

}  // namespace transport
