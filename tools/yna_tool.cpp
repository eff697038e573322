// yna-tool: the operator's CLI over the event log (contract §8).
// Implemented so far: `token` (development access tokens) and `verify` (hash chain,
// sequence continuity, indexes). replay/timeline/audit/cdr/export come with issue 6.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "schemas/api.hpp"
#include "schemas/dev_issuer.hpp"
#include "schemas/json_writer.hpp"
#include "storage/event_log.hpp"

namespace fs = std::filesystem;

namespace {

// Exit codes (tools/README.md): 0 ok, 1 the check failed, 2 usage or I/O error.
constexpr int exit_ok = 0, exit_check_failed = 1, exit_error = 2;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int cmd_token(const std::string& data_dir, const std::vector<std::string>& numbers, const std::string& device,
              const std::string& sub, std::int64_t ttl, bool json) {
  schemas::access_claims c;
  for (const auto& n : numbers) {
    auto m = schemas::normalize_msisdn(n);
    if (!m) {
      std::fprintf(stderr, "yna-tool: %s is not an E.164 number (6 to 15 digits)\n", n.c_str());
      return exit_error;
    }
    c.msisdns.push_back(*m);
  }
  auto issuer = schemas::load_or_create_dev_issuer(data_dir);
  if (!issuer) {
    std::fprintf(stderr, "yna-tool: development issuer: %s\n", issuer.error().c_str());
    return exit_error;
  }
  c.sub = sub.empty() ? "dev-" + c.msisdns.front() : sub;
  c.device_id = device;
  c.iat = now_s();
  c.exp = c.iat + ttl;
  const std::string token = schemas::mint_access_token(*issuer, c);
  if (json) {
    schemas::json_writer w;
    w.begin_object().field("access_token", std::string_view(token)).field("sub", std::string_view(c.sub));
    w.field("exp", c.exp).end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("%s\n", token.c_str());
  }
  return exit_ok;
}

int cmd_verify(const std::string& data_dir, bool json) {
  const fs::path dir = fs::path(data_dir) / "log";
  char tmpl[] = "/tmp/yna-tool-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("yna-tool: mkdtemp");
    return exit_error;
  }
  const fs::path scratch = tmpl;
  int rc = exit_ok;
  {
    auto log = storage::event_log::open_reader(dir, scratch);
    if (!log) {
      std::fprintf(stderr, "yna-tool: cannot open the log in %s: %s (%s)\n", dir.c_str(),
                   std::string(storage::to_string(log.error().code)).c_str(), log.error().detail.c_str());
      fs::remove_all(scratch);
      return exit_error;
    }
    const bool tty = isatty(STDERR_FILENO);
    auto report = (*log)->verify([&](std::uint64_t n) {
      if (tty) std::fprintf(stderr, "\rverified %llu events", static_cast<unsigned long long>(n));
    });
    if (tty) std::fprintf(stderr, "\n");
    if (json) {
      schemas::json_writer w;
      w.begin_object().field("ok", report.ok).field("checked", report.checked).field("lastSeq", report.last_seq);
      if (!report.ok) w.field("firstBad", report.first_bad).field("problem", std::string_view(report.problem));
      w.end_object();
      std::printf("%s\n", w.str().c_str());
    } else if (report.ok) {
      std::printf("OK: %llu events, seq 1..%llu, hash chain and indexes intact\n",
                  static_cast<unsigned long long>(report.checked), static_cast<unsigned long long>(report.last_seq));
    } else {
      std::printf("BROKEN at seq %llu: %s\n", static_cast<unsigned long long>(report.first_bad),
                  report.problem.c_str());
    }
    rc = report.ok ? exit_ok : exit_check_failed;
  }
  fs::remove_all(scratch);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"yna-tool: read, check and audit the yna-engine event log"};
  app.require_subcommand(1);
  std::string data_dir = "./data";
  bool json = false;
  app.add_option("--data-dir", data_dir, "The engine's data folder")->capture_default_str();
  app.add_flag("--json", json, "Machine-readable output");

  auto* token = app.add_subcommand("token", "Mint a development access token (development issuer only)");
  std::vector<std::string> numbers;
  std::string device, sub;
  std::int64_t ttl = 3600;
  token->add_option("--msisdn", numbers, "A number the token may call from and receive on (repeatable)")->required();
  token->add_option("--device-id", device, "device_id claim");
  token->add_option("--sub", sub, "sub claim (default dev-<first number>)");
  token->add_option("--ttl", ttl, "Lifetime in seconds")->capture_default_str();

  auto* verify = app.add_subcommand("verify", "Check the hash chain, sequence continuity and indexes");

  CLI11_PARSE(app, argc, argv);
  if (token->parsed()) return cmd_token(data_dir, numbers, device, sub, ttl, json);
  if (verify->parsed()) return cmd_verify(data_dir, json);
  return exit_error;
}
