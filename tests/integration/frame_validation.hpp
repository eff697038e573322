#pragma once
// What a test received, checked against the published documents: every WebSocket frame
// against schemas/asyncapi.yaml and every REST response against schemas/openapi.yaml, by
// tests/schemas/validate/validate.js (node and `npm ci --prefix tests/schemas/validate`
// are needed; the check FAILS without them, as .ci/install-deps installs both).
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/harness.hpp"

namespace integration {

// Every frame a test received and every REST response it got. Thread-safe.
struct capture {
  std::mutex mu;
  std::vector<std::string> frames;
  std::vector<std::string> responses;  // {"method","path","status","body"} lines

  void frame(const std::string& f);
  void response(std::string_view method, std::string_view target, const integration::response& r);
};

// Runs validate.js on what `cap` holds (at least one frame), writing its inputs under
// `scratch`; a doctest CHECK fails when a frame or response does not match.
void validate_captured(capture& cap, const std::filesystem::path& scratch);

}  // namespace integration
