#pragma once
// Integration-test harness: runs the real `yna-engine` binary and talks to it over
// real sockets (style §8: the real binary, port 0, a temporary data folder).
//
//   engine_process  one engine child process on its own temporary folder; restartable
//                   on the same folder; never outlives the test process.
//   http_client     a blocking HTTP/1.1 client over Beast, one keep-alive connection.
//   raw_request     arbitrary bytes on a fresh connection, one response parsed back.
//   token helpers   access tokens from the engine's development issuer (or a stranger's).
//   json / metrics  tiny readers for response bodies and Prometheus text.
//
// Everything here throws std::runtime_error on harness-level failure (the engine did
// not start, a connection timed out): doctest reports it as a failed test with the text.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "schemas/dev_issuer.hpp"

namespace integration {

using namespace std::chrono_literals;

// $YNA_ENGINE, else the path meson compiled in (YNA_ENGINE_PATH).
std::filesystem::path engine_path();
// $YNA_TOOL, else `<build>/tools/yna-tool` next to the engine's build folder, when it exists.
std::optional<std::filesystem::path> tool_path();

// How a child process ended.
struct exit_status {
  bool exited = false;    // returned from main / called exit
  int code = 0;           // exit code when exited
  int signal = 0;         // terminating signal when !exited
  bool timed_out = false; // stop(): did not end within the grace period (then SIGKILLed)
  std::string describe() const;
  bool clean() const { return exited && code == 0 && !timed_out; }
};

// One yna-engine child on `<root>/data`, root made by mkdtemp. stdout and stderr go
// to files in root (stderr is shown when a start fails). The child gets
// PR_SET_PDEATHSIG=SIGKILL, so it dies with the test process even on a crash; the
// destructor SIGKILLs a running child and removes root.
class engine_process {
 public:
  // extra_args are appended to `--listen 127.0.0.1:0 --data-dir <root>/data`; "{root}"
  // in them is replaced by root() (for files a test writes there before start()).
  explicit engine_process(std::vector<std::string> extra_args = {}, bool start_now = true);
  ~engine_process();
  engine_process(const engine_process&) = delete;
  engine_process& operator=(const engine_process&) = delete;

  // Spawns the engine and waits (up to 20 s) for `yna-engine listening on http://127.0.0.1:PORT`.
  // Throws with the stderr tail when the child exits first, times out or prints something else.
  void start();
  // SIGTERM, then waits up to `grace`; SIGKILL after that (reported as timed_out).
  exit_status stop(std::chrono::milliseconds grace = 20s);
  // SIGKILL and reap: the crash the durability test needs.
  void kill9();
  // stop() if running, then start() on the same folder. Returns stop()'s status.
  exit_status restart();

  bool running() const noexcept { return pid_ > 0; }
  pid_t pid() const noexcept { return pid_; }
  std::uint16_t port() const noexcept { return port_; }
  const std::filesystem::path& root() const noexcept { return root_; }
  const std::filesystem::path& data_dir() const noexcept { return data_; }
  // Last lines of the current (or last) run's stderr.
  std::string stderr_tail(std::size_t max_lines = 40) const;

  // Access token from the engine's development issuer (valid once start() returned).
  // Thread-safe.
  std::string token(std::vector<std::string> msisdns, std::string device_id = "dev-1",
                    std::chrono::seconds ttl = 1h) const;
  // Same, with explicit iat/exp (epoch seconds), e.g. an expired token.
  std::string token_at(std::vector<std::string> msisdns, std::int64_t iat, std::int64_t exp,
                       std::string device_id = "dev-1") const;
  const schemas::dev_issuer& issuer() const;

 private:
  std::vector<std::string> extra_;
  std::filesystem::path root_, data_, stdout_file_, stderr_file_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int runs_ = 0;
  std::optional<schemas::dev_issuer> issuer_;
};

// The device key of every token the harness mints: its public half is the tokens'
// cnf.jwk, and http_client signs a PoP token (X-Authorization) with it for every request
// that carries an Authorization header but no X-Authorization (except POST .../start,
// where PoP is optional). Send the header {"X-Authorization", no_pop} to send none.
const schemas::jose::private_key& test_device_key();
inline constexpr std::string_view no_pop = "<no-pop>";

// An RS256 token with the development issuer's kid and iss, but signed by a fresh key.
std::string foreign_token(std::vector<std::string> msisdns, std::chrono::seconds ttl = 1h);
// "<b64u(header)>.<b64u(payload)>.<b64u(signature)>" from raw parts (for alg none & co).
std::string compact_jwt(std::string_view header_json, std::string_view payload_json, std::string_view signature);
std::int64_t now_seconds();

// ---------------------------------------------------------------------------- HTTP

using header_list = std::vector<std::pair<std::string, std::string>>;

struct response {
  int status = 0;
  header_list headers;  // names lower-cased, in arrival order
  std::string body;
  // Value of the first header of that name (case-insensitive), nullopt when absent.
  std::optional<std::string> header(std::string_view name) const;
  std::string content_type() const { return header("content-type").value_or(""); }
};

// Blocking HTTP/1.1 over one keep-alive connection to 127.0.0.1:port, reconnecting when
// the server closed it. Not thread-safe: one client per thread. Every request has a
// deadline (default 30 s); throws std::runtime_error on connect/IO failure or timeout.
class http_client {
 public:
  explicit http_client(std::uint16_t port, std::chrono::milliseconds timeout = 30s);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // `method` may be any token (unknown methods are sent as written). Content-Length is
  // set from the body for POST/PUT/PATCH/DELETE, or whenever the body is not empty.
  response request(std::string_view method, std::string_view target, std::string_view body = {},
                   const header_list& headers = {});
  response get(std::string_view target, const header_list& headers = {}) {
    return request("GET", target, {}, headers);
  }
  response post(std::string_view target, std::string_view body, const header_list& headers = {}) {
    return request("POST", target, body, headers);
  }
  response del(std::string_view target, const header_list& headers = {}) {
    return request("DELETE", target, {}, headers);
  }
  // Points the client at another port (after a restart); drops the connection.
  void set_port(std::uint16_t port);
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Sends `bytes` as written on a fresh connection and parses one response back
// (the write and the read run together, so early answers such as 413 are seen).
response raw_request(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout = 30s);

// Sends `bytes` (e.g. several pipelined requests) and reads `n` responses in order.
std::vector<response> raw_requests(std::uint16_t port, std::string_view bytes, std::size_t n,
                                   std::chrono::milliseconds timeout = 30s);

// ---------------------------------------------------------------------------- JSON

// JSON pointer reads (RFC 6901, e.g. "/errors/0/reasonCode"); nullopt when the body does
// not parse, the path is absent, or the value has another type.
std::optional<std::string> json_str(std::string_view body, std::string_view pointer);
std::optional<std::int64_t> json_int(std::string_view body, std::string_view pointer);
// Any JSON number (integer or not) as a double.
std::optional<double> json_num(std::string_view body, std::string_view pointer);
bool json_has(std::string_view body, std::string_view pointer);
bool json_is_object(std::string_view body);
// Number of members of the object at pointer ("" for the root); nullopt if not an object.
std::optional<std::size_t> json_object_size(std::string_view body, std::string_view pointer = "");
// errors[0].reasonCode, or "" when there is none.
std::string reason_code_of(std::string_view body);
// {"errors":[{reasonCode,systemMessage,userMessage: strings}, …]} with at least one entry.
bool is_error_info(std::string_view body);

// ---------------------------------------------------------------------------- misc

// Value of one Prometheus series, written exactly as exposed (e.g.
// `yna_commit_batch_events_bucket{le="1"}`); nullopt when absent.
std::optional<double> metric_value(std::string_view text, std::string_view series);
// Sum of every series of `name` whose label set contains each of `labels` (e.g.
// {"endpoint=\"start\"", "status=\"200\""}); nullopt when none matches.
std::optional<double> metric_sum(std::string_view text, std::string_view name, const std::vector<std::string>& labels);

// VmRSS of a process, in KiB (0 when unreadable).
long rss_kib(pid_t pid);

// $YNA_TEST_LOAD_SCALE (default 1): sanitizer runs (.ci/sanitize) scale the request
// counts of load-heavy tests down by it; what each test checks stays the same.
double load_scale();
// n scaled by load_scale(), at least `floor`.
int scaled(int n, int floor = 1);

bool is_guid(std::string_view s);
// s quoted for /bin/sh.
std::string shell_quote(std::string_view s);
struct run_result {
  int exit_code = -1;
  std::string out;  // stdout
};
// Runs `cmd` through /bin/sh and waits for it.
run_result run_command(const std::string& cmd);
// A fresh 11-digit MSISDN, unique within the test process.
std::string fresh_msisdn();
// A valid SDP (RFC 8866 minimum) with `tag` in its o= line, so each side's SDP differs.
std::string sdp(std::string_view tag = "x");
// JSON string literal for s (quotes and escapes).
std::string json_quote(std::string_view s);
// {"Authorization": "Bearer <token>"} plus extra headers.
header_list bearer(std::string_view token, header_list extra = {});

}  // namespace integration
