// yna-tool: the operator's CLI over the event log (contract §8).
// Implemented so far: `token` (development access tokens with a device PoP key),
// `pop` (an X-Authorization value for one request) and `verify` (hash chain, sequence
// continuity, indexes). replay/timeline/audit/cdr/export come with issue 6.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "schemas/api.hpp"
#include "schemas/dev_issuer.hpp"
#include "schemas/json_writer.hpp"
#include "schemas/pop_token.hpp"

#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include "storage/event_log.hpp"

namespace fs = std::filesystem;

namespace {

// Exit codes (tools/README.md): 0 ok, 1 the check failed, 2 usage or I/O error.
constexpr int exit_ok = 0, exit_check_failed = 1, exit_error = 2;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes a private key readable by its owner only.
bool write_private(const std::string& path, const std::string& pem) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << pem;
    if (!out) return false;
  }
  ::chmod(tmp.c_str(), 0600);
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int cmd_token(const std::string& data_dir, const std::vector<std::string>& numbers, const std::string& device,
              const std::string& sub, std::int64_t ttl, std::string pop_key_out, bool no_pop_key, bool json) {
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
  if (!no_pop_key) {
    // The device's PoP key pair: the private half stays with the device (a file here),
    // the public half goes into the token's cnf.jwk.
    if (pop_key_out.empty()) pop_key_out = "yna-device-" + (device.empty() ? c.msisdns.front() : device) + ".pem";
    const auto key = schemas::jose::private_key::generate_rsa(2048);
    if (!write_private(pop_key_out, key.to_pem())) {
      std::fprintf(stderr, "yna-tool: cannot write the PoP key to %s\n", pop_key_out.c_str());
      return exit_error;
    }
    c.cnf_jwk_json = key.public_part().to_jwk_json();
  }
  const std::string token = schemas::mint_access_token(*issuer, c);
  if (json) {
    schemas::json_writer w;
    w.begin_object().field("access_token", std::string_view(token)).field("sub", std::string_view(c.sub));
    w.field("exp", c.exp);
    if (!no_pop_key) w.field("pop_key_file", std::string_view(pop_key_out));
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("%s\n", token.c_str());
    if (!no_pop_key)
      std::fprintf(stderr, "PoP key: %s (sign requests with: yna-tool pop --key %s --token ... --method ... --uri ...)\n",
                   pop_key_out.c_str(), pop_key_out.c_str());
  }
  return exit_ok;
}

int cmd_pop(const std::string& key_file, const std::string& token, const std::string& method, const std::string& uri,
            const std::string& body, const std::string& body_file, std::int64_t ttl) {
  auto pem = read_file(key_file);
  if (!pem) {
    std::fprintf(stderr, "yna-tool: cannot read %s\n", key_file.c_str());
    return exit_error;
  }
  auto key = schemas::jose::private_key::from_pem(*pem);
  if (!key || !key->is_rsa()) {
    std::fprintf(stderr, "yna-tool: %s is not an RSA private key (PEM)\n", key_file.c_str());
    return exit_error;
  }
  std::string payload = body;
  if (!body_file.empty()) {
    auto b = read_file(body_file);
    if (!b) {
      std::fprintf(stderr, "yna-tool: cannot read %s\n", body_file.c_str());
      return exit_error;
    }
    payload = std::move(*b);
  }
  std::printf("%s\n", schemas::build_request_pop(*key, method, uri, payload, "Bearer " + token, now_s(), ttl).c_str());
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
  std::string pop_key_out;
  bool no_pop_key = false;
  token->add_option("--pop-key-out", pop_key_out, "Where to write the device's PoP private key (default ./yna-device-<device-id or number>.pem)");
  token->add_flag("--no-pop-key", no_pop_key, "Mint a token without cnf.jwk (it can only call /start)");

  auto* pop = app.add_subcommand("pop", "Print an X-Authorization (PoP) value for one request");
  std::string pop_key, pop_token, pop_method = "POST", pop_uri, pop_body, pop_body_file;
  std::int64_t pop_ttl = 120;
  pop->add_option("--key", pop_key, "The device's PoP private key (from `token`)")->required();
  pop->add_option("--token", pop_token, "The access token sent as Authorization: Bearer")->required();
  pop->add_option("--method", pop_method, "HTTP method")->capture_default_str();
  pop->add_option("--uri", pop_uri, "Request target as sent: path and query, e.g. /hold/ABC")->required();
  pop->add_option("--body", pop_body, "Request body, exactly as sent");
  pop->add_option("--body-file", pop_body_file, "Read the body from this file instead");
  pop->add_option("--ttl", pop_ttl, "Lifetime in seconds (at most 300)")->capture_default_str();

  auto* verify = app.add_subcommand("verify", "Check the hash chain, sequence continuity and indexes");

  CLI11_PARSE(app, argc, argv);
  if (token->parsed()) return cmd_token(data_dir, numbers, device, sub, ttl, pop_key_out, no_pop_key, json);
  if (pop->parsed()) return cmd_pop(pop_key, pop_token, pop_method, pop_uri, pop_body, pop_body_file, pop_ttl);
  if (verify->parsed()) return cmd_verify(data_dir, json);
  return exit_error;
}
