#include "tests/integration/harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "schemas/base64url.hpp"
#include "schemas/jose.hpp"

#ifndef YNA_ENGINE_PATH
#define YNA_ENGINE_PATH "yna-engine"
#endif

namespace integration {

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

exit_status decode_wait(int st) {
  exit_status s;
  if (WIFEXITED(st)) {
    s.exited = true;
    s.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    s.signal = WTERMSIG(st);
  }
  return s;
}

// Reaps pid within `limit`; nullopt when it is still running.
std::optional<int> wait_for(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return 0;  // not our child any more: treat as gone
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

void close_inherited_fds() {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  for (int fd = 3; fd < 4096; ++fd) ::close(fd);
}

}  // namespace

fs::path engine_path() {
  if (const char* e = std::getenv("YNA_ENGINE"); e && *e) return e;
  return YNA_ENGINE_PATH;
}

std::optional<fs::path> tool_path() {
  if (const char* e = std::getenv("YNA_TOOL"); e && *e) return fs::path(e);
  const fs::path guess = engine_path().parent_path().parent_path() / "tools" / "yna-tool";
  std::error_code ec;
  if (fs::is_regular_file(guess, ec)) return guess;
  return std::nullopt;
}

std::string exit_status::describe() const {
  std::string s = exited ? "exited with code " + std::to_string(code)
                         : "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  if (timed_out) s += " after not stopping within the grace period";
  return s;
}

engine_process::engine_process(std::vector<std::string> extra_args, bool start_now) : extra_(std::move(extra_args)) {
  std::string tmpl = (fs::temp_directory_path() / "yna-it-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  root_ = tmpl;
  data_ = root_ / "data";
  if (start_now) start();
}

engine_process::~engine_process() {
  if (running()) kill9();
  // Under a sanitizer (.ci/sanitize) a report stops the engine at once, which a test only
  // notices when it talks to the engine again or checks its exit: a race in its last
  // moments, or one in a test that ends with the SIGKILL above, would pass unseen. Any
  // report in any run's stderr fails the test binary here, with the report.
  for (int r = 1; r <= runs_; ++r) {
    const fs::path err = root_ / ("engine." + std::to_string(r) + ".stderr");
    const std::string text = read_file(err);
    for (const char* mark : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer"}) {
      const auto at = text.find(mark);
      if (at == std::string::npos) continue;
      std::fflush(stdout);
      std::fprintf(stderr, "yna-engine reported (%s):\n%s\nfailing the test binary\n", err.c_str(),
                   text.substr(at, 20000).c_str());
      std::fflush(stderr);
      std::_Exit(1);
    }
  }
  if (std::getenv("YNA_IT_KEEP") == nullptr) {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
}

void engine_process::start() {
  if (running()) throw std::runtime_error("engine_process::start: already running");
  ++runs_;
  stdout_file_ = root_ / ("engine." + std::to_string(runs_) + ".stdout");
  stderr_file_ = root_ / ("engine." + std::to_string(runs_) + ".stderr");
  const fs::path exe = engine_path();

  std::vector<std::string> args{exe.string(), "--listen", "127.0.0.1:0", "--data-dir", data_.string()};
  for (std::string a : extra_) {
    for (auto at = a.find("{root}"); at != std::string::npos; at = a.find("{root}"))
      a.replace(at, 6, root_.string());
    args.push_back(std::move(a));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int out = ::open(stdout_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = ::open(stderr_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) throw std::runtime_error("cannot create the engine's output files in " + root_.string());

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Dies with the thread that forked
    // it (start() is called from the test's main thread).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    close_inherited_fds();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  pid_ = pid;
  port_ = 0;

  // http:// or, with --tls-cert, https://
  const std::string prefix = "yna-engine listening on http://127.0.0.1:";
  const std::string tls_prefix = "yna-engine listening on https://127.0.0.1:";
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::string why;
  for (;;) {
    const std::string text = read_file(stdout_file_);
    const auto nl = text.find('\n');
    if (nl != std::string::npos) {
      const std::string line = text.substr(0, nl);
      const bool tls = line.rfind(tls_prefix, 0) == 0;
      if (tls || line.rfind(prefix, 0) == 0) {
        const std::string digits = line.substr((tls ? tls_prefix : prefix).size());
        char* end = nullptr;
        const unsigned long p = std::strtoul(digits.c_str(), &end, 10);
        if (!digits.empty() && *end == '\0' && p > 0 && p < 65536) {
          port_ = static_cast<std::uint16_t>(p);
          break;
        }
      }
      why = "its first stdout line is not the listening line: '" + line + "'";
      break;
    }
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      why = "it " + decode_wait(st).describe() + " before printing the listening line";
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      why = "no listening line within 20 s";
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (!why.empty()) {
    if (running()) kill9();
    throw std::runtime_error("yna-engine (" + exe.string() + ") did not start: " + why + "\n--- stderr tail (" +
                             stderr_file_.string() + ") ---\n" + stderr_tail());
  }
  if (!issuer_) {
    auto dev = schemas::load_or_create_dev_issuer(data_);
    if (!dev) throw std::runtime_error("cannot load the development issuer: " + dev.error());
    issuer_ = std::move(*dev);
  }
}

exit_status engine_process::stop(std::chrono::milliseconds grace) {
  if (!running()) throw std::runtime_error("engine_process::stop: not running");
  ::kill(pid_, SIGTERM);
  exit_status s;
  if (auto st = wait_for(pid_, grace)) {
    s = decode_wait(*st);
  } else {
    ::kill(pid_, SIGKILL);
    int st2 = 0;
    ::waitpid(pid_, &st2, 0);
    s = decode_wait(st2);
    s.timed_out = true;
  }
  pid_ = -1;
  return s;
}

void engine_process::kill9() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

exit_status engine_process::restart() {
  exit_status s;
  s.exited = true;
  if (running()) s = stop();
  start();
  return s;
}

std::string engine_process::stderr_tail(std::size_t max_lines) const {
  const std::string text = read_file(stderr_file_);
  std::size_t pos = text.size();
  std::size_t lines = 0;
  while (pos > 0 && lines <= max_lines) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  return text.substr(pos == 0 ? 0 : pos + 1);
}

const schemas::dev_issuer& engine_process::issuer() const {
  if (!issuer_) throw std::runtime_error("engine_process: no development issuer (engine never started)");
  return *issuer_;
}

std::string engine_process::token_at(std::vector<std::string> msisdns, std::int64_t iat, std::int64_t exp,
                                     std::string device_id) const {
  schemas::access_claims c;
  c.sub = "it-" + (msisdns.empty() ? std::string("nobody") : msisdns.front());
  c.msisdns = std::move(msisdns);
  c.device_id = std::move(device_id);
  c.iat = iat;
  c.exp = exp;
  c.cnf_jwk_json = test_device_key().public_part().to_jwk_json();
  return schemas::mint_access_token(issuer(), c);
}

const schemas::jose::private_key& test_device_key() {
  static const schemas::jose::private_key key = schemas::jose::private_key::generate_rsa(2048);
  return key;
}

std::string engine_process::token(std::vector<std::string> msisdns, std::string device_id,
                                  std::chrono::seconds ttl) const {
  const std::int64_t now = now_seconds();
  return token_at(std::move(msisdns), now, now + ttl.count(), std::move(device_id));
}

std::string foreign_token(std::vector<std::string> msisdns, std::chrono::seconds ttl) {
  static const schemas::jose::private_key key = schemas::jose::private_key::generate_rsa(2048);
  schemas::dev_issuer other{key, std::string(schemas::dev_issuer_kid), std::string(schemas::dev_issuer_name)};
  schemas::access_claims c;
  c.sub = "foreign";
  c.msisdns = std::move(msisdns);
  c.device_id = "foreign-dev";
  c.iat = now_seconds();
  c.exp = c.iat + ttl.count();
  return schemas::mint_access_token(other, c);
}

std::string compact_jwt(std::string_view header_json, std::string_view payload_json, std::string_view signature) {
  return schemas::base64url_encode(header_json) + "." + schemas::base64url_encode(payload_json) + "." +
         schemas::base64url_encode(signature);
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

double load_scale() {
  static const double s = [] {
    const char* v = std::getenv("YNA_TEST_LOAD_SCALE");
    const double d = v ? std::atof(v) : 1.0;
    return d > 0 && d <= 1 ? d : 1.0;
  }();
  return s;
}

int scaled(int n, int floor) { return std::max(floor, static_cast<int>(n * load_scale())); }

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_guid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::string fresh_msisdn() {
  static std::atomic<unsigned> next{0};
  const unsigned n = next.fetch_add(1) % 10000000U;
  std::string digits = std::to_string(n);
  return "1425" + std::string(7 - digits.size(), '0') + digits;
}

std::string sdp(std::string_view tag) {
  std::string s = "v=0\r\no=- 20518 0 IN IP4 127.0.0.1\r\ns=";
  s += tag;
  s += "\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n";
  return s;
}

std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += c;
        }
    }
  }
  o += '"';
  return o;
}

header_list bearer(std::string_view token, header_list extra) {
  header_list h{{"Authorization", "Bearer " + std::string(token)}};
  for (auto& e : extra) h.push_back(std::move(e));
  return h;
}

std::string shell_quote(std::string_view s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

run_result run_command(const std::string& cmd) {
  run_result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

}  // namespace integration
