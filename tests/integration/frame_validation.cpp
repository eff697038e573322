#include "tests/integration/frame_validation.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <stdexcept>

#ifndef YNA_INTEROP_DIR
#error "meson passes -DYNA_INTEROP_DIR=<source>/tests/interop"
#endif

namespace integration {

namespace fs = std::filesystem;

namespace {

fs::path source_root() { return fs::weakly_canonical(fs::path(YNA_INTEROP_DIR) / ".." / ".."); }
fs::path validate_dir() { return source_root() / "tests" / "schemas" / "validate"; }

void write_lines(const fs::path& p, const std::vector<std::string>& lines) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  for (const auto& l : lines) out << l << '\n';
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace

void capture::frame(const std::string& f) {
  std::lock_guard lk(mu);
  frames.push_back(f);
}

void capture::response(std::string_view method, std::string_view target, const integration::response& r) {
  std::string line = "{\"method\":" + json_quote(method) + ",\"path\":" + json_quote(target) +
                     ",\"status\":" + std::to_string(r.status) + ",\"body\":" + json_quote(r.body) + "}";
  std::lock_guard lk(mu);
  responses.push_back(std::move(line));
}

void validate_captured(capture& cap, const fs::path& scratch) {
  const run_result v = run_command("node --version 2>&1");
  if (v.exit_code != 0)
    FAIL("node is not installed (`node --version`: exit ", v.exit_code, " ", v.out,
         "): the frame validation needs it; run .ci/install-deps");
  if (!fs::exists(validate_dir() / "node_modules" / "@asyncapi" / "parser"))
    FAIL("the npm packages of ", validate_dir().string(), " are not installed: run `npm ci --prefix ",
         validate_dir().string(), " --no-audit --no-fund` (.ci/install-deps does)");
  std::lock_guard lk(cap.mu);
  REQUIRE(!cap.frames.empty());
  static std::atomic<int> n{0};
  const int i = n.fetch_add(1);
  const fs::path frames = scratch / ("frames-" + std::to_string(i) + ".jsonl");
  const fs::path responses = scratch / ("responses-" + std::to_string(i) + ".jsonl");
  write_lines(frames, cap.frames);
  write_lines(responses, cap.responses);
  const std::string cmd = "node " + shell_quote((validate_dir() / "validate.js").string()) + " " +
                          shell_quote(source_root().string()) + " --frames " + shell_quote(frames.string()) +
                          " --responses " + shell_quote(responses.string()) + " 2>&1";
  const run_result r = run_command(cmd);
  INFO("validate.js (", cap.frames.size(), " frames, ", cap.responses.size(), " responses): exit ", r.exit_code,
       "\n", r.out);
  CHECK(r.exit_code == 0);
  MESSAGE("validated ", cap.frames.size(), " frames and ", cap.responses.size(), " REST responses");
}

}  // namespace integration
