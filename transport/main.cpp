// yna-engine: composes the parts (contract §8). Opens the log, recovers the call table
// (the persisted calls plus any events after them, contract §9), starts the reactor
// thread, then listens.
#include <cmath>
#include <CLI/CLI.hpp>

#include <malloc.h>

#include <csignal>
#include <sys/resource.h>
#include <cstdio>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/ip/address.hpp>

#include "engine/codec.hpp"
#include "engine/log.hpp"
#include "engine/reactor.hpp"
#include "schemas/dev_issuer.hpp"
#include "transport/dev_token_route.hpp"
#include "storage/event_log.hpp"
#include "storage/state.hpp"
#include "transport/api.hpp"
#include "transport/admin_socket.hpp"
#include "transport/fault_route.hpp"
#include "transport/auth.hpp"
#include "transport/notifier.hpp"
#include "transport/replay.hpp"
#include "transport/server.hpp"
#include "transport/caller_id.hpp"
#include "transport/detail/outbound.hpp"
#include "transport/dispatch.hpp"
#include "transport/push.hpp"
#include "transport/webhook_plan.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono;

[[noreturn]] void die(const std::string& msg);

struct flags {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string tls_cert, tls_key;
  std::vector<std::string> jwt_public_keys;
  std::string jwt_issuer, jwt_audience;
  std::string base_path;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_ip = 256, max_sockets_per_sub = 32, health_slots = 8;
  std::vector<std::string> trusted_proxies;
  double first_byte_timeout = 5;
  double max_token_lifetime = 24 * 3600;
  std::int64_t token_leeway = 30;
  double read_timeout = 10, idle_timeout = 60;
  std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
  std::size_t max_pending = 16384;
  double max_queue_delay = 0.25;
  std::size_t admit_floor = 256;
  std::size_t max_batch = 1024;
  std::size_t write_pipeline = 2;
  double request_timeout = 5;
  double invite_timeout = 30, answer_timeout = 90, offer_timeout = 15, max_call_duration = 4 * 3600;
  double call_retention = 3600;
  unsigned log_memory_mib = 128;
  std::string admin_socket;  // empty: <data-dir>/admin.sock
  bool no_fsync = false;
  bool fault_injection = false;
  double rate_limit = 50, rate_burst = 100;
  double rate_limit_sub = 100, rate_burst_sub = 200;
  std::size_t pop_jti_per_key = 16384;  // a device at --rate-limit for a PoP's whole lifetime: 50 x 310
  std::size_t rate_max_tokens = 1'000'000;
  std::int64_t pop_leeway = 10, pop_max_lifetime = 300;
  std::size_t pop_replay_capacity = 1'000'000;
  std::size_t token_cache = 100'000;
  std::size_t ws_max_queue = 1024;
  double ws_idle_timeout = 30;
  std::size_t max_replay_events = 10000;
  std::size_t max_replay_jobs = 1024, max_replay_bytes = 256u * 1024 * 1024;
  std::string log_format = "text";
  std::vector<std::string> webhooks;
  std::string webhook_secret_file;
  double webhook_max_age = 24 * 3600, webhook_retry_min = 1, webhook_retry_max = 300, webhook_timeout = 5;
  std::size_t webhook_max_pending = 4096, webhook_concurrency = 4;
  std::vector<std::string> outbound_allow;
  std::string outbound_ca;
  std::optional<std::string> sti_cert, sti_key;
  std::string sti_x5u;
  std::vector<std::string> gateway_subs, sti_x5u_allow;
  std::string sti_trust;
  double sti_x5u_timeout = 2;
  std::size_t sti_cache = 1000, sti_max_waiting = 4096;
  double pusher_ttl = 30 * 86400;
  std::string meeting_base_uri = "https://meet.yna.invalid/m/";
};

// The secret of --webhook-secret-file: the file's contents without the line end.
std::string read_secret(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) die("--webhook-secret-file " + path + ": cannot be read");
  std::string s;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && s.size() < 65536) s.append(buf, n);
  std::fclose(f);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) die("--webhook-secret-file " + path + " is empty");
  return s;
}

[[noreturn]] void die(const std::string& msg) {
  engine::log::error("{}", msg);
  std::exit(1);
}

// A flag's value that does not parse: a usage error (exit 2), naming the flag.
[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "yna-engine: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

std::pair<std::string, std::uint16_t> split_listen(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos) usage_error("--listen must be HOST:PORT, got '" + s + "'");
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string digits = s.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || port > 65535)
    usage_error("--listen port must be a number from 0 to 65535, got '" + digits + "'");
  boost::system::error_code bad;
  boost::asio::ip::make_address(host, bad);
  if (bad) usage_error("--listen host must be an IP address, got '" + host + "'");
  return {host, static_cast<std::uint16_t>(port)};
}

bool is_loopback(const std::string& host) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (a.is_v4()) return a.to_v4().is_loopback();
  return a.to_v6().is_loopback() || (a.to_v6().is_v4_mapped() &&
                                     boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback());
}

// `dev` receives the development issuer when it is the one in use (no --jwt-public-key).
transport::issuer_config issuers(const flags& f, std::optional<schemas::dev_issuer>& dev_out) {
  transport::issuer_config cfg;
  if (!f.jwt_issuer.empty()) cfg.issuer = f.jwt_issuer;
  if (!f.jwt_audience.empty()) cfg.audience = f.jwt_audience;
  cfg.gateway_subs = f.gateway_subs;
  if (!f.jwt_public_keys.empty()) {
    for (const auto& p : f.jwt_public_keys) {
      auto k = transport::load_trusted_key_pem(p, fs::path(p).stem().string());
      if (!k) die("--jwt-public-key " + p + ": " + k.error());
      cfg.keys.push_back(std::move(*k));
    }
    return cfg;
  }
  // Contract §11: never a gateway from the development issuer (anyone may mint there).
  if (!f.gateway_subs.empty()) die("--gateway-sub needs --jwt-public-key: the development issuer mints no gateway");
  auto dev = schemas::load_or_create_dev_issuer(f.data_dir);
  if (!dev) die("development issuer: " + dev.error());
  cfg.keys.push_back(transport::trusted_key{dev->kid, dev->key.public_part()});
  if (!cfg.issuer) cfg.issuer = dev->issuer;
  dev->issuer = *cfg.issuer;  // tokens minted by POST /dev/token carry the issuer the verifier wants
  dev_out = std::move(*dev);
  engine::log::info("no --jwt-public-key: using the development issuer in {} (mint tokens with: "
                    "yna-tool --data-dir {} token --msisdn NUMBER)",
                    (fs::path(f.data_dir) / schemas::dev_issuer_key_file).string(), f.data_dir);
  return cfg;
}

engine::call_table recover(storage::event_log& log) {
  const auto t0 = steady_clock::now();
  auto st = storage::load_state(log);
  if (!st) die("recovery: " + st.error());
  engine::log::info("recovered {} calls in memory ({} live) at seq {}: {} persisted at seq {} + {} events folded in {} ms",
                    st->table.size(), st->table.active(), st->table.last_seq(), st->persisted_calls,
                    st->persisted_seq, st->folded_events, duration_cast<milliseconds>(steady_clock::now() - t0).count());
  return std::move(st->table);
}

transport::server* g_server = nullptr;
engine::reactor* g_reactor = nullptr;

}  // namespace

int main(int argc, char** argv) {
  // Memory that stays flat over months (contract §9). glibc raises its mmap threshold each
  // time a large mmapped block is freed; after that, RocksDB's memtable blocks (about a
  // MiB each, allocated and freed as memtables fill and flush) came from the heap arenas
  // and fragmented them: RSS crept up by 20-30 KiB per 1,000 calls while RocksDB's own
  // accounting stayed flat (BENCHMARKS.md, state over time). A fixed threshold (which also
  // fixes the trim threshold) keeps blocks of 256 KiB and more in their own mappings,
  // returned to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // Block SIGINT/SIGTERM before any thread exists (RocksDB, reactor, I/O): every thread
  // inherits the mask, and one dedicated thread takes them with sigwait() below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  {  // every connection is a descriptor: allow as many as the hard limit does
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }

  flags f;
  CLI::App app{"yna-engine: the Your Number Anywhere calling engine (event-sourced, RocksDB log)"};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", f.listen, "HOST:PORT to listen on (port 0: any free port)");
  app.add_option("--data-dir", f.data_dir, "Folder of the event log and the development issuer key");
  app.add_option("--tls-cert", f.tls_cert, "PEM certificate chain: serve HTTPS (TLS 1.2 or newer) only");
  app.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert");
  app.add_option("--jwt-public-key", f.jwt_public_keys, "Trusted issuer public key, PEM (repeatable; kid = file stem)");
  app.add_option("--jwt-issuer", f.jwt_issuer, "Required `iss` of access tokens");
  app.add_option("--jwt-audience", f.jwt_audience, "Required `aud` of access tokens");
  app.add_option("--base-path", f.base_path, "Prefix in front of every path, e.g. /v1");
  app.add_option("--max-body-bytes", f.max_body_bytes, "Largest request body; larger gets 413");
  app.add_option("--max-header-bytes", f.max_header_bytes, "Largest request header block; larger gets 431");
  app.add_option("--max-connections", f.max_connections, "Open HTTP connections; more are closed at once (0: no limit)");
  app.add_option("--health-slots", f.health_slots,
                 "Connections accepted beyond --max-connections that serve only /healthz and /readyz");
  app.add_option("--max-connections-per-ip", f.max_connections_per_ip,
                 "Open connections (and WebSockets) per client address; more are closed at once (0: no limit)");
  app.add_option("--max-sockets-per-sub", f.max_sockets_per_sub,
                 "Notification WebSockets per subject (sub); more get 429 (0: no limit)");
  app.add_option("--trusted-proxy", f.trusted_proxies,
                 "Address of a proxy whose PROXY protocol v1 header names the client (repeatable; plain HTTP "
                 "listener)");
  app.add_option("--first-byte-timeout", f.first_byte_timeout,
                 "Seconds a new connection may take to send its first byte (TLS: its handshake)")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--token-leeway", f.token_leeway,
                 "Seconds of clock skew allowed on access tokens' exp, nbf and iat; a notification socket closes "
                 "this long after its token expires")
      ->check(CLI::Range(0, 3600));
  app.add_option("--max-token-lifetime", f.max_token_lifetime,
                 "Longest access-token lifetime accepted (exp - iat), seconds (0: no bound)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--read-timeout", f.read_timeout, "Seconds a started request may take to arrive");
  app.add_option("--idle-timeout", f.idle_timeout, "Seconds a keep-alive connection may sit idle");
  app.add_option("--threads", f.threads, "I/O threads");
  app.add_option("--max-pending", f.max_pending, "Requests queued at the reactor; more get 503");
  app.add_option("--max-queue-delay", f.max_queue_delay,
                 "Overload: admit only as many requests as the engine answers in this many seconds at its recent "
                 "rate; refuse the rest at once with 503 (0: off, only --max-pending)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--admit-floor", f.admit_floor,
                 "Requests always admitted at once, whatever the recent rate (--max-queue-delay)");
  app.add_option("--max-batch", f.max_batch, "Most events in one log write");
  app.add_option("--write-pipeline", f.write_pipeline,
                 "Log writes in flight at once: the next batch is written while the last one syncs (1: each write "
                 "waits for the last one's sync)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{16}));
  app.add_option("--request-timeout", f.request_timeout, "Seconds a request may wait to be written; then 408");
  const auto seconds = CLI::Range(0.0, 1e9);
  app.add_option("--invite-timeout", f.invite_timeout, "Seconds after /start without MT progress: NotReachable (0: never)")
      ->check(seconds);
  app.add_option("--answer-timeout", f.answer_timeout, "Seconds after /start without an answer: NoAnswer (0: never)")
      ->check(seconds);
  app.add_option("--offer-timeout", f.offer_timeout,
                 "Seconds a hold, resume or renegotiate offer may wait for its answer; then withdrawn (0: never)")
      ->check(seconds);
  app.add_option("--max-call-duration", f.max_call_duration,
                 "Seconds a call may stay answered; then Terminated, reason max-duration (0: no limit)")
      ->check(seconds);
  engine::call_caps caps;
  app.add_option("--max-calls-per-number", caps.max_calls_per_number,
                 "Calls not ended from one number; a further /start gets 429 TOO_MANY_CALLS (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--max-ringing-per-number", caps.max_ringing_per_number,
                 "Calls ringing one number; a further /start to it ends at once Busy, reason too-many-calls, "
                 "told to the caller only (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--call-retention", f.call_retention,
                 "Seconds an ended call stays in memory; then it is retired (a retire event) and answered from "
                 "the log (0: retired at once)")
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--rate-limit", f.rate_limit, "Requests per second per access token; more get 429 (0: no limit)");
  app.add_option("--rate-burst", f.rate_burst, "Requests an access token may send at once before --rate-limit applies");
  app.add_option("--rate-limit-sub", f.rate_limit_sub,
                 "Requests per second per subject (sub), all its tokens together; more get 429 (0: no limit)");
  app.add_option("--rate-burst-sub", f.rate_burst_sub, "Requests a subject may send at once before --rate-limit-sub applies");
  app.add_option("--rate-max-tokens", f.rate_max_tokens,
                 "Buckets each rate limiter keeps (tokens, subjects); when full the least recently used is forgotten");
  app.add_option("--pop-leeway", f.pop_leeway, "Seconds of clock skew allowed on PoP exp and iat");
  app.add_option("--pop-max-lifetime", f.pop_max_lifetime, "Longest PoP token lifetime (exp - iat) accepted, seconds");
  app.add_option("--pop-replay-capacity", f.pop_replay_capacity,
                 "PoP jti values remembered for replay detection, all keys together; when full of live ones: 503");
  app.add_option("--pop-jti-per-key", f.pop_jti_per_key,
                 "Live PoP jti values remembered per device key; beyond, that key alone gets 429 (0: no share)");
  app.add_option("--token-cache", f.token_cache, "Verified access tokens kept (by SHA-256, until expiry; 0: none)");
  app.add_option("--ws-max-queue", f.ws_max_queue, "Frames a notification socket may fall behind before it is closed");
  app.add_option("--ws-idle-timeout", f.ws_idle_timeout, "Seconds without traffic on a notification socket: ping at half, close at full");
  app.add_option("--max-replay-events", f.max_replay_events, "Most events one ?since= replay may read; further back is refused");
  app.add_option("--max-replay-jobs", f.max_replay_jobs,
                 "?since= replays waiting to be read from the log; more close at once (1013) (0: no limit)");
  app.add_option("--max-replay-bytes", f.max_replay_bytes,
                 "Bytes of replayed frames not yet written, all notification sockets together; a replay that would "
                 "exceed it closes (1013) (0: no limit)");
  app.add_option("--log-memory", f.log_memory_mib,
                 "MiB of memory for the log's RocksDB: block cache and memtables together (16..65536)")
      ->check(CLI::Range(16u, 65536u));
  app.add_option("--admin-socket", f.admin_socket,
                 "Unix socket (0600) through which yna-tool archive asks the engine to remove an archived range "
                 "(default: <data-dir>/admin.sock)");
  app.add_flag("--unsafe-no-fsync", f.no_fsync, "Do not fsync the log (benchmarks only: acknowledged events may be lost)");
  app.add_flag("--fault-injection", f.fault_injection,
               "Serve POST /_faults, which makes the log's writes fail on demand (tests only)");
  app.add_option("--webhook", f.webhooks,
                 "URL that gets every notification of every call, signed (contract §13; repeatable; needs "
                 "--webhook-secret-file and its host in --outbound-allow)");
  app.add_option("--webhook-secret-file", f.webhook_secret_file,
                 "File holding the secret of the webhooks' Yna-Signature (HMAC-SHA256)");
  app.add_option("--webhook-max-age", f.webhook_max_age,
                 "Seconds after its event that a failing webhook delivery is retried; then it is dead (logged)")
      ->check(CLI::Range(1.0, 1e9));
  app.add_option("--webhook-retry-min", f.webhook_retry_min, "Seconds before the first retry of a webhook delivery")
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--webhook-retry-max", f.webhook_retry_max, "Longest wait between two attempts of a webhook delivery")
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--webhook-timeout", f.webhook_timeout,
                 "Seconds one outbound attempt (webhook or push) may take, connecting to answer; then it is retried")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--webhook-max-pending", f.webhook_max_pending,
                 "Deliveries read ahead from the log and not yet done, per webhook URL and for push (reading waits beyond)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  app.add_option("--webhook-concurrency", f.webhook_concurrency,
                 "Senders per webhook URL and for push, each with a kept-alive connection per origin (different numbers' or devices' deliveries go in parallel)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  app.add_option("--outbound-allow", f.outbound_allow,
                 "Hosts that webhooks and push gateways (POST /pushers) may go to (comma-separated or repeated); a loopback, private or link-local "
                 "address is connected to only when listed exactly")
      ->delimiter(',');
  app.add_option("--pusher-ttl", f.pusher_ttl,
                 "Seconds a push registration outlives the access token that made it; then the engine removes it")
      ->check(CLI::Range(1.0, 1e9));
  app.add_option("--meeting-base-uri", f.meeting_base_uri,
                 "Upgrades to a meeting (contract §10): a meetingUri must start with this; without one the engine makes "
                 "one here ending in 128 random bits")
      ->check([](const std::string& v) {
        return (v.starts_with("https://") || v.starts_with("http://")) && v.size() > 8 && v.size() <= 1024
                   ? std::string()
                   : std::string("must be an http(s) URI prefix of at most 1024 characters");
      });
  engine::pusher_limits pusher_limits;
  app.add_option("--max-pushers-per-sub", pusher_limits.max_per_sub,
                 "Push registrations (devices) one subject may have; a further one gets 429 TOO_MANY_PUSHERS (0: no limit)")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--outbound-ca", f.outbound_ca, "PEM file of CA certificates trusted for outbound HTTPS, besides the "
                 "system's");
  app.add_option("--sti-cert", f.sti_cert,
                 "PEM chain of the STI certificate the engine signs its callers' PASSporTs with (contract §11; the "
                 "signing certificate first); without it a development chain is made in <data-dir>/sti");
  app.add_option("--sti-key", f.sti_key, "PEM EC P-256 private key of --sti-cert");
  app.add_option("--sti-x5u", f.sti_x5u,
                 "The URL the PASSporTs' x5u names, where verifiers fetch the chain (default: this engine's "
                 "https://<host>:<port><base-path>/sti/cert.pem, which serves it)");
  app.add_option("--gateway-sub", f.gateway_subs,
                 "A subject whose tokens with the claim gateway:true are gateways (contract §11): they /start "
                 "calls from any number, with an `identity` to verify (repeatable; needs --jwt-public-key)");
  app.add_option("--sti-trust", f.sti_trust,
                 "PEM root certificates a gateway's PASSporT chain must lead to (default: the development "
                 "STI root, when signing with the development chain)");
  app.add_option("--sti-x5u-allow", f.sti_x5u_allow,
                 "An https:// URL prefix that a gateway's PASSporT x5u may start with, fetched under the outbound "
                 "rules (a loopback, private or link-local address only when the prefix names it); repeatable")
      ->delimiter(',');
  app.add_option("--sti-x5u-timeout", f.sti_x5u_timeout, "Seconds one x5u fetch may take; then TN-Validation-Failed")
      ->check(CLI::Range(0.001, 60.0));
  app.add_option("--sti-cache", f.sti_cache, "x5u certificate chains kept (fetched again after an hour; 0: none)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1'000'000}));
  app.add_option("--sti-max-waiting", f.sti_max_waiting,
                 "Gateway /starts waiting for x5u fetches at once; more are TN-Validation-Failed (x5u-unavailable) at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--log-format", f.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  // Counts: CLI11 would read "-1" into a size_t as a huge number; a negative count is a
  // usage error like any other malformed value.
  for (const char* count : {"--max-body-bytes", "--max-header-bytes", "--max-connections", "--health-slots",
                            "--max-connections-per-ip", "--max-sockets-per-sub", "--threads", "--max-pending",
                            "--admit-floor", "--max-batch", "--rate-max-tokens",
                            "--pop-replay-capacity", "--pop-jti-per-key", "--token-cache", "--ws-max-queue",
                            "--max-replay-events", "--max-replay-jobs", "--max-replay-bytes",
                            "--webhook-max-pending", "--webhook-concurrency"})
    app.get_option(count)->check(CLI::NonNegativeNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help, or the error naming the flag
    return rc == 0 ? 0 : 2;
  }

  engine::log::set_format(f.log_format == "json" ? engine::log::format::json : engine::log::format::text);
  if (f.tls_cert.empty() != f.tls_key.empty()) die("--tls-cert and --tls-key go together");
  if (!f.base_path.empty() && (f.base_path.front() != '/' || f.base_path.back() == '/'))
    die("--base-path must start with '/' and not end with '/'");
  const auto [host, port] = split_listen(f.listen);
  for (const auto& p : f.trusted_proxies) {
    boost::system::error_code bad;
    boost::asio::ip::make_address(p, bad);
    if (bad) usage_error("--trusted-proxy must be an IP address, got '" + p + "'");
  }

  std::error_code ec;
  fs::create_directories(f.data_dir, ec);
  if (ec) die("--data-dir " + f.data_dir + ": " + ec.message());

  std::optional<schemas::dev_issuer> dev_issuer;
  auto issuer_cfg = issuers(f, dev_issuer);
  issuer_cfg.max_lifetime_s = static_cast<std::int64_t>(f.max_token_lifetime);
  issuer_cfg.leeway_s = f.token_leeway;
  // Operators are warned (contract §3a).
  if (!dev_issuer && (f.jwt_issuer.empty() || f.jwt_audience.empty()))
    engine::log::warn("external issuer without {}: any token signed by its keys is accepted, whoever it was "
                      "issued for (set --jwt-issuer and --jwt-audience)",
                      f.jwt_issuer.empty() && f.jwt_audience.empty() ? "--jwt-issuer and --jwt-audience"
                      : f.jwt_issuer.empty()                        ? "--jwt-issuer"
                                                                    : "--jwt-audience");
  if (dev_issuer && !is_loopback(host))
    engine::log::warn("the development issuer is on and {} is not a loopback address: anyone who reaches it can "
                      "mint tokens for any number with POST /dev/token (configure --jwt-public-key)",
                      host);
  transport::token_verifier verifier(std::move(issuer_cfg), f.token_cache);

  engine::registry metrics;
  auto& sync_seconds = metrics.get_histogram(
      "yna_log_sync_seconds", "Time of one log write until it is durable: the write, then the WAL sync that covers it",
      engine::latency_buckets_seconds());
  std::atomic<bool> storage_ok{true};

  storage::log_options lo;
  lo.dir = fs::path(f.data_dir) / "log";
  lo.sync = !f.no_fsync;
  lo.memory_budget = std::uint64_t{f.log_memory_mib} << 20;
  static engine::log::limiter storage_log_limit(10);  // a full disk fails every write: 10 lines a second
  lo.on_warning = [](std::string_view w) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now().time_since_epoch()).count();
    if (storage_log_limit.allow(now)) engine::log::warn("storage: {}", w);
  };
  std::unique_ptr<storage::fault_env> faults;
  if (f.fault_injection) {
    faults = std::make_unique<storage::fault_env>();
    lo.env = faults->env();
    engine::log::warn("fault injection is on: POST /_faults makes the log fail (never use this in production)");
  }
  auto opened = storage::event_log::open(lo);
  if (!opened) die(fmt::format("cannot open the log in {}: {} ({})", lo.dir.string(),
                               storage::to_string(opened.error().code), opened.error().detail));
  std::unique_ptr<storage::event_log> log = std::move(*opened);
  {
    constexpr std::string_view help = "Memory of the log's RocksDB, by part (block_cache includes the memtables' charge)";
    auto& budget = metrics.get_gauge("yna_log_memory_budget_bytes", "--log-memory: the log's RocksDB memory budget");
    budget.set(static_cast<std::int64_t>(lo.memory_budget));
    auto* memtables = &metrics.get_gauge("yna_log_memory_bytes", help, "part=\"memtables\"");
    auto* cache = &metrics.get_gauge("yna_log_memory_bytes", help, "part=\"block_cache\"");
    auto* pinned = &metrics.get_gauge("yna_log_memory_bytes", help, "part=\"pinned\"");
    auto* readers = &metrics.get_gauge("yna_log_memory_bytes", help, "part=\"table_readers\"");
    metrics.on_render([&log, memtables, cache, pinned, readers] {
      const auto m = log->memory();
      memtables->set(static_cast<std::int64_t>(m.memtables));
      cache->set(static_cast<std::int64_t>(m.block_cache));
      pinned->set(static_cast<std::int64_t>(m.pinned));
      readers->set(static_cast<std::int64_t>(m.table_readers));
    });
  }
  log->set_sync_observer([&](std::size_t, double seconds, bool ok) {
    sync_seconds.observe(seconds);
    storage_ok.store(ok, std::memory_order_relaxed);
  });

  engine::system_clock clock;
  engine::reactor_options ro;
  ro.max_pending = f.max_pending;
  ro.max_queue_delay_ms = static_cast<engine::epoch_ms>(std::llround(f.max_queue_delay * 1000));
  ro.admit_floor = f.admit_floor;
  ro.max_batch = f.max_batch;
  ro.max_inflight_batches = f.write_pipeline;
  ro.request_timeout_ms = static_cast<engine::epoch_ms>(f.request_timeout * 1000);
  auto ms = [](double secs) { return static_cast<engine::epoch_ms>(std::llround(secs * 1000)); };
  ro.timers = engine::timer_settings{ms(f.invite_timeout), ms(f.answer_timeout), ms(f.offer_timeout),
                                     ms(f.max_call_duration), ms(f.call_retention)};
  ro.caps = caps;
  ro.pushers = pusher_limits;
  engine::reactor reactor(*log, clock, metrics, ro, recover(*log));
  if (reactor.armed_timers() > 0)
    engine::log::info("{} call timers armed; those whose deadline passed while stopped fire now", reactor.armed_timers());
  transport::notification_hub hub(f.base_path, metrics);
  reactor.set_listener(&hub);
  reactor.set_presence([&hub](std::string_view msisdn) { return hub.number_online(msisdn); });
  reactor.set_lookup(log.get());  // retired calls answer from the log (contract §9)
  auto replay = std::make_unique<transport::replay_worker>(
      log.get(), f.base_path, transport::replay_limits{f.max_replay_events, f.max_replay_jobs, f.max_replay_bytes},
      &metrics);

  // Delivery from the log (contract §13): a plan per --webhook URL, and push.
  std::vector<std::unique_ptr<transport::dispatch_plan>> plans;
  transport::detail::outbound_policy outbound;
  outbound.allow = f.outbound_allow;
  if (!f.webhooks.empty()) {
    if (f.webhook_secret_file.empty()) die("--webhook needs --webhook-secret-file (deliveries are signed)");
    if (f.webhook_retry_min > f.webhook_retry_max) die("--webhook-retry-min is above --webhook-retry-max");
    transport::webhook_settings ws;
    ws.urls = f.webhooks;
    ws.secret = read_secret(f.webhook_secret_file);
    ws.retry = transport::retry_policy{milliseconds(std::llround(f.webhook_retry_min * 1000)),
                                       milliseconds(std::llround(f.webhook_retry_max * 1000)),
                                       milliseconds(std::llround(f.webhook_max_age * 1000))};
    ws.base_path = f.base_path;
    auto made = transport::make_webhook_plans(ws, [&](std::string_view h) { return outbound.host_allowed(h); });
    if (!made) die(made.error());
    for (auto& p : *made) plans.push_back(std::move(p));
  } else if (!f.webhook_secret_file.empty()) {
    engine::log::warn("--webhook-secret-file without --webhook: no webhook is sent");
  }
  {
    transport::push_settings ps;
    ps.base_path = f.base_path;
    ps.ring_for = milliseconds(std::llround(f.answer_timeout * 1000));
    hub.set_pushers(reactor.recovered_pushers());
    transport::push_registry reg;
    reg.any = [&hub] { return hub.has_pushers(); };
    reg.for_number = [&hub](const std::string& m) { return hub.pushers_for(m); };
    reg.find = [&hub](const std::string& sub, const std::string& dev) { return hub.pusher_of(sub, dev); };
    reg.online = [&hub](const std::string& m, const std::string& sub, const std::string& dev) {
      return hub.device_online(m, sub, dev);
    };
    reg.committed = [&reactor] { return reactor.committed_seq(); };
    reg.rejected = [&reactor](const engine::pusher& p) {  // the gateway refused its pushkey: the engine removes it
      engine::command cmd;
      cmd.act = engine::action::unregister_pusher;
      cmd.by_engine = true;
      cmd.push = engine::pusher{};
      cmd.push->sub = p.sub;
      cmd.push->device_id = p.device_id;
      cmd.push->pushkey = p.pushkey;
      cmd.reason = std::string(engine::pusher_rejected_reason);
      cmd.method = "DELETE";
      cmd.path = "/pushers/" + p.device_id;
      if (!reactor.submit(std::move(cmd), [](engine::reply) {}))
        engine::log::warn("push: the rejected pushkey of device {} is removed later (the engine is busy)", p.device_id);
    };
    plans.push_back(transport::make_push_plan(std::move(reg), ps));
  }
  transport::dispatcher_settings ds;
  ds.timeout = milliseconds(std::llround(f.webhook_timeout * 1000));
  ds.max_pending = f.webhook_max_pending;
  ds.concurrency = f.webhook_concurrency;
  ds.outbound_allow = f.outbound_allow;
  ds.outbound_ca = f.outbound_ca;
  auto dispatcher_made = transport::log_dispatcher::create(
      *log, std::move(plans), std::move(ds),
      {std::string(transport::webhook_cursor_prefix), std::string(transport::push_cursor_name)}, metrics);
  if (!dispatcher_made) die(dispatcher_made.error());
  std::unique_ptr<transport::log_dispatcher> dispatcher = std::move(*dispatcher_made);

  transport::api_options ao;
  ao.base_path = f.base_path;
  ao.rate_per_token = f.rate_limit;
  ao.rate_burst = f.rate_burst;
  ao.rate_max_tokens = f.rate_max_tokens;
  ao.rate_per_sub = f.rate_limit_sub;
  ao.rate_sub_burst = f.rate_burst_sub;
  ao.pusher_ttl_s = static_cast<std::int64_t>(f.pusher_ttl);
  ao.meeting_base_uri = f.meeting_base_uri;
  {
    ao.check_push_url = [policy = outbound](std::string_view url) -> std::string {
      auto u = transport::parse_outbound_url(url);
      if (!u) return u.error();
      if (!policy.host_allowed(u->host)) return "its host " + u->host + " is not in --outbound-allow";
      return {};
    };
  }
  ao.pop = transport::pop_options{f.pop_leeway, f.pop_max_lifetime, f.pop_replay_capacity, f.pop_jti_per_key};
  if (faults) ao.faults = [&](std::string_view body) { return transport::apply_faults(body, *log, *faults); };
  transport::dev_token_settings dts;
  if (!f.jwt_audience.empty()) dts.audience = f.jwt_audience;
  if (dev_issuer) {
    ao.dev_token = [&](std::string_view body) {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::system_clock::now().time_since_epoch()).count();
      return transport::mint_dev_token(body, *dev_issuer, dts, now);
    };
    engine::log::info("development issuer: POST /dev/token mints tokens for the web softphone at /phone/");
  }
  // The STI-AS (contract §11). Its default x5u names the port, known once bound (below).
  auto signer_made = transport::load_sti_signer(f.sti_cert, f.sti_key, f.data_dir, f.sti_x5u, clock.now() / 1000);
  if (!signer_made) die(signer_made.error());
  auto signer = std::make_shared<transport::sti_signer>(std::move(*signer_made));
  ao.signer = signer;
  // The STI-VS (contract §11), for gateways' /starts.
  std::unique_ptr<transport::identity_verifier> sti_verifier;
  {
    transport::sti_verify_settings vs;
    if (!f.sti_trust.empty()) {
      std::ifstream in(f.sti_trust, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      if (!in) die("--sti-trust " + f.sti_trust + ": cannot read it");
      vs.trust_pem = text.str();
    } else if (!signer->root_file.empty()) {
      std::ifstream in(signer->root_file, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      vs.trust_pem = text.str();
    }
    vs.x5u_allow = f.sti_x5u_allow;
    vs.timeout = milliseconds(std::llround(f.sti_x5u_timeout * 1000));
    vs.cache_entries = f.sti_cache;
    vs.max_waiting = f.sti_max_waiting;
    vs.outbound_ca = f.outbound_ca;
    if (!vs.trust_pem.empty()) {
      auto made = transport::identity_verifier::create(std::move(vs), metrics);
      if (!made) die(made.error());
      sti_verifier = std::move(*made);
      ao.verify_identity = [v = sti_verifier.get()](std::string identity, std::string from, std::string to,
                                                    std::int64_t now, transport::identity_verifier::done_fn done) {
        v->verify(std::move(identity), std::move(from), std::move(to), now, std::move(done));
      };
    }
  }
  transport::api handler(reactor, verifier, metrics, ao, [&] { return storage_ok.load(std::memory_order_relaxed); });
  transport::server_options so;
  so.host = host;
  so.port = port;
  so.threads = f.threads;
  so.max_body_bytes = f.max_body_bytes;
  so.max_header_bytes = f.max_header_bytes;
  so.max_connections = f.max_connections;
  so.health_slots = f.health_slots;
  so.max_connections_per_ip = f.max_connections_per_ip;
  so.max_sockets_per_sub = f.max_sockets_per_sub;
  so.trusted_proxies = f.trusted_proxies;
  so.first_byte_timeout = milliseconds(static_cast<std::int64_t>(f.first_byte_timeout * 1000));
  so.read_timeout = milliseconds(static_cast<std::int64_t>(f.read_timeout * 1000));
  so.idle_timeout = milliseconds(static_cast<std::int64_t>(f.idle_timeout * 1000));
  so.tls_cert_file = f.tls_cert;
  so.tls_key_file = f.tls_key;
  transport::websocket_services ws{&reactor, &hub, replay.get(), {}};
  ws.opts.max_queue = f.ws_max_queue;
  ws.opts.token_leeway_s = f.token_leeway;
  ws.opts.idle_timeout = milliseconds(static_cast<std::int64_t>(f.ws_idle_timeout * 1000));
  transport::server srv(so, handler, ws, metrics);
  // Each batch's replies and frames go to each I/O thread in one hand-off.
  // and the dispatcher (webhooks, push) hears that the log grew.
  reactor.set_after_batch([&srv, d = dispatcher.get()] {
    srv.flush_handoffs();
    d->notify();
  });
  dispatcher->start();
  if (sti_verifier) sti_verifier->start();
  std::thread reactor_thread([&] {
    engine::log::name_this_thread("yna-reactor");
    reactor.run();
  });
  std::uint16_t bound = 0;
  try {
    bound = srv.start();
  } catch (const std::exception& e) {
    reactor.stop();
    reactor_thread.join();
    die(fmt::format("cannot listen on {}: {}", f.listen, e.what()));
  }
  if (signer->x5u.empty()) {  // before run(): no request is served yet
    const bool any = host == "0.0.0.0" || host == "::";
    const std::string h = any ? "localhost" : host.find(':') != std::string::npos ? "[" + host + "]" : host;
    signer->x5u = fmt::format("https://{}:{}{}/sti/cert.pem", h, bound, f.base_path);
  }
  engine::log::info("caller identity: signing SHAKEN PASSporTs with {} (x5u {})",
                    f.sti_cert ? *f.sti_cert : (fs::path(f.data_dir) / "sti/chain.pem").string(), signer->x5u);
  // The admin socket (contract §9): yna-tool archive asks through it to remove a range.
  transport::admin_socket admin(f.admin_socket.empty() ? fs::path(f.data_dir) / "admin.sock" : fs::path(f.admin_socket),
                                *log);
  try {
    admin.start();
  } catch (const std::exception& e) {
    srv.stop();
    reactor.stop();
    reactor_thread.join();
    die(e.what());
  }
  g_server = &srv;
  g_reactor = &reactor;
  // SIGINT/SIGTERM: a dedicated thread waits for them, so no work runs in a handler.
  std::thread signals([set = stop_signals] {
    int sig = 0;
    sigwait(&set, &sig);
    engine::log::info("signal {}: stopping", sig);
    g_server->stop();
  });
  signals.detach();

  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const char* scheme = f.tls_cert.empty() ? "http" : "https";
  std::printf("yna-engine listening on %s://%s:%u\n", scheme, shown_host.c_str(), static_cast<unsigned>(bound));
  std::fflush(stdout);
  engine::log::info("listening on {}://{}:{} ({} I/O threads, log in {}, fsync {})", scheme, shown_host, bound, f.threads,
                    lo.dir.string(), lo.sync ? "on" : "OFF");

  srv.run();
  if (sti_verifier) sti_verifier->stop();  // /starts still waiting for an x5u are answered
  admin.stop();  // a removal in progress finishes first
  reactor.stop();
  reactor_thread.join();
  dispatcher->stop();  // saves the cursors
  replay.reset();  // reads the log: gone before it
  log.reset();
  engine::log::info("stopped");
  return 0;
}
