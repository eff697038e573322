// yna-loadgen: drives concurrent, realistic call flows against a running yna-engine and
// reports throughput, latency per endpoint, notification latency and errors by
// reasonCode (tools/README.md). Exit code: 0 when every answer, status and notification
// was as expected; 1 when any was not; 2 on a usage or setup error.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "schemas/dev_issuer.hpp"
#include "tools/loadgen/probe.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/runner.hpp"

namespace {

namespace fs = std::filesystem;
namespace jose = schemas::jose;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<jose::private_key> load_key(const fs::path& p, std::string& error) {
  std::ifstream in(p, std::ios::binary);
  if (!in) {
    error = "cannot read " + p.string();
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto k = jose::private_key::from_pem(ss.str());
  if (!k) {
    error = p.string() + ": " + std::string(jose::to_string(k.error()));
    return std::nullopt;
  }
  return std::move(*k);
}

}  // namespace

int main(int argc, char** argv) {
  loadgen::raise_fd_limit();
  loadgen::options o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  std::string data_dir, issuer_key, kid(schemas::dev_issuer_kid), iss(schemas::dev_issuer_name), mix = "full",
      pop = "per-request", record_file, number_prefix;
  double timeout_s = 5, notify_timeout_s = 2, retry_for_s = 30;
  std::size_t idle_sockets = 0, device_keys = 8;
  bool json = false, quiet = false, no_ws = false;
  std::int64_t token_ttl = 3600;

  CLI::App app{"yna-loadgen: concurrent call flows against yna-engine, with a real PoP token per request"};
  app.option_defaults()->always_capture_default();
  app.add_option("--host", o.host, "Engine address (numeric)");
  app.add_option("--port", o.port, "Engine port")->required();
  app.add_option("--base-path", o.base_path, "The engine's --base-path");
  app.add_option("--data-dir", data_dir, "The engine's data folder: mint tokens with its development issuer key");
  app.add_option("--issuer-key", issuer_key, "Issuer private key PEM (instead of --data-dir)");
  app.add_option("--kid", kid, "kid of the minted access tokens");
  app.add_option("--iss", iss, "iss of the minted access tokens");
  app.add_option("--token-ttl", token_ttl, "Lifetime of the minted access tokens, seconds");
  app.add_option("-c,--concurrency", o.concurrency, "Virtual users (caller/callee pairs): calls in flight at most")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("-r,--rate", o.rate, "Open loop: calls started per second (0: closed loop, each user calls again at once)");
  app.add_option("-d,--duration", o.duration_s, "Seconds measured (after --warmup)");
  app.add_option("-n,--calls", o.calls, "Stop after this many calls instead of after --duration");
  app.add_option("--warmup", o.warmup_s, "Seconds run before measuring");
  app.add_option("--mix", mix, "Flows and weights: full, answer, cancel, busy, decline, start (e.g. full:6,answer:2,cancel:1,busy:1)");
  app.add_option("--pop", pop, "PoP token (X-Authorization): per-request signs every request, off sends none (start only)")
      ->check(CLI::IsMember({"off", "per-request"}));
  app.add_option("--threads", o.threads, "Client threads")->check(CLI::Range(1u, 256u));
  app.add_option("--timeout", timeout_s, "Seconds a request may take");
  app.add_option("--notify-timeout", notify_timeout_s, "Seconds a notification may take after the causing answer");
  app.add_flag("--no-websockets", no_ws, "Open no notification sockets (notifications are not checked)");
  app.add_flag("--retry-start", o.retry_start, "Re-send /start (same clientCorrelator) after a connection failure");
  app.add_flag("--overload", o.overload,
               "Expect refusals: 503 SERVICE_UNAVAILABLE ends the call and is counted as refused, not as a failure "
               "(overload runs)");
  app.add_option("--retry-for", retry_for_s, "Seconds --retry-start keeps trying");
  app.add_option("--record", record_file, "Write one JSON line per answer (callId, endpoint, status, txn, time)");
  app.add_option("--engine-pid", o.engine_pid, "Engine process (same machine): CPU per request and memory");
  app.add_option("--idle-sockets", idle_sockets, "After the run, open this many idle sockets and report their memory");
  app.add_option("--device-keys", device_keys, "RSA-2048 device keys made and shared by the users")->check(CLI::Range(1u, 1024u));
  app.add_option("--number-prefix", number_prefix, "Four digits in every MSISDN (default: random per run)");
  app.add_flag("--json", json, "Print the report as JSON");
  app.add_flag("-q,--quiet", quiet, "No progress lines");
  CLI11_PARSE(app, argc, argv);

  std::string err;
  auto parsed_mix = loadgen::flow_mix::parse(mix, err);
  if (!parsed_mix) {
    fmt::print(stderr, "--mix: {}\n", err);
    return 2;
  }
  o.mix = std::move(*parsed_mix);
  o.pop = pop == "off" ? loadgen::pop_mode::off : loadgen::pop_mode::per_request;
  o.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  o.notify_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(notify_timeout_s * 1000));
  o.retry_for = std::chrono::milliseconds(static_cast<std::int64_t>(retry_for_s * 1000));
  o.websockets = !no_ws;
  o.progress = !quiet;
  if (o.pop == loadgen::pop_mode::off && !o.mix.only(loadgen::flow_kind::start_only))
    fmt::print(stderr, "warning: --pop off with flows beyond /start: the engine will answer 401 POP_MISSING\n");

  std::mt19937_64 seed(std::random_device{}());
  if (number_prefix.empty()) number_prefix = fmt::format("{:04d}", seed() % 10000);
  if (number_prefix.size() != 4 || number_prefix.find_first_not_of("0123456789") != std::string::npos) {
    fmt::print(stderr, "--number-prefix must be four digits\n");
    return 2;
  }
  o.run_id = fmt::format("{:08x}", seed() & 0xffffffff);

  if (issuer_key.empty() && data_dir.empty()) {
    fmt::print(stderr, "give --data-dir (the engine's, for its development issuer) or --issuer-key\n");
    return 2;
  }
  const fs::path key_file = issuer_key.empty() ? fs::path(data_dir) / schemas::dev_issuer_key_file : fs::path(issuer_key);
  auto key = load_key(key_file, err);
  if (!key) {
    fmt::print(stderr, "issuer key: {}\n", err);
    return 2;
  }
  const schemas::dev_issuer issuer{std::move(*key), kid, iss};

  // Credentials: one access token per party, each for its own number, with a device key
  // from a small pool in cnf.jwk (generating RSA keys is slow; sharing one does not
  // change what the engine does per request).
  std::vector<jose::private_key> keys;
  std::vector<std::string> jwks;
  if (o.pop == loadgen::pop_mode::per_request)
    for (std::size_t i = 0; i < std::min<std::size_t>(device_keys, o.concurrency); ++i) {
      keys.push_back(jose::private_key::generate_rsa(2048));
      jwks.push_back(keys.back().public_part().to_jwk_json());
    }
  auto mint = [&](const std::string& number, const std::string& device, std::size_t k) {
    schemas::access_claims c;
    c.sub = "loadgen-" + number;
    c.msisdns = {number};
    c.device_id = device;
    if (!keys.empty()) c.cnf_jwk_json = jwks[k % keys.size()];
    c.iat = now_s();
    c.exp = c.iat + token_ttl;
    return schemas::mint_access_token(issuer, c);
  };
  std::vector<loadgen::user_identity> users(o.concurrency);
  for (std::size_t i = 0; i < users.size(); ++i) {
    for (int side = 0; side < 2; ++side) {
      auto& p = side == 0 ? users[i].mo : users[i].mt;
      p.number = fmt::format("1{}{:07d}", number_prefix, 2 * i + static_cast<std::size_t>(side) + 1);
      p.device_id = fmt::format("lg-{}", side == 0 ? "mo" : "mt");
      p.token = mint(p.number, p.device_id, i);
      p.key = keys.empty() ? nullptr : &keys[i % keys.size()];
    }
  }

  loadgen::stats st;
  std::unique_ptr<loadgen::recorder> rec;
  try {
    rec = std::make_unique<loadgen::recorder>(record_file);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 2;
  }
  loadgen::engine_figures eng;
  eng.pid = o.engine_pid;
  if (eng.pid) {
    eng.rss_start_kib = loadgen::engine_rss_kib(eng.pid);
    eng.active_calls_start = loadgen::fetch_metric(o.host, o.port, o.base_path, "yna_active_calls");
  }
  const loadgen::run_result r = loadgen::run(o, users, st, *rec);
  if (eng.pid) {
    eng.rss_end_kib = loadgen::engine_rss_kib(eng.pid);
    eng.rss_peak_kib = loadgen::engine_rss_kib(eng.pid, "VmHWM:");
    eng.active_calls_end = loadgen::fetch_metric(o.host, o.port, o.base_path, "yna_active_calls");
  }
  std::optional<loadgen::idle_socket_cost> idle;
  if (idle_sockets > 0 && r.setup_ok)
    idle = loadgen::measure_idle_sockets(o.host, o.port, o.base_path,
                                         mint(fmt::format("1{}9999999", number_prefix), "lg-idle", 0), idle_sockets,
                                         o.engine_pid);
  rec->flush();
  const loadgen::report_input in{o, st, r, eng, idle, record_file, rec->lines()};
  if (json)
    fmt::print("{}\n", loadgen::to_json(in));
  else
    loadgen::print_text(in, stdout);
  if (!r.setup_ok) return 2;
  return loadgen::passed(in) ? 0 : 1;
}
