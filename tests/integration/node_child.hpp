#pragma once
// A node script as a child process of the test (webhook_receiver.mjs, push_gateway.mjs):
// started with its arguments, its stdout and stderr to a file, ready once it prints
// "listening on <port>"; killed with the test process (PR_SET_PDEATHSIG) or by stop().
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef YNA_SOURCE_DIR
#error "meson passes -DYNA_SOURCE_DIR=<source>"
#endif

namespace integration {

inline std::string slurp_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit_file(const std::filesystem::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

class node_child {
 public:
  // `script`: relative to the source folder; `log`: where its output goes.
  node_child(std::string script, std::vector<std::string> args, std::filesystem::path log)
      : script_(std::filesystem::path(YNA_SOURCE_DIR) / script), args_(std::move(args)), log_(std::move(log)) {}
  ~node_child() { stop(); }
  node_child(const node_child&) = delete;
  node_child& operator=(const node_child&) = delete;

  // Starts it (again), with `extra` appended to the arguments; returns the port it listens on.
  std::uint16_t start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{"node", script_.string()};
    argv.insert(argv.end(), args_.begin(), args_.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string log = log_.string() + "." + std::to_string(++runs_);
    const pid_t parent = getpid();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      execvp("node", c.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string text = slurp_file(log);
      if (auto at = text.find("listening on "); at != std::string::npos && text.find('\n', at) != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::stoi(text.substr(at + 13)));
        return port_;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL(script_.filename().string(), " exited: ", text);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL(script_.filename().string(), " did not start: ", slurp_file(log));
    return 0;
  }

  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::uint16_t port() const { return port_; }

 private:
  std::filesystem::path script_;
  std::vector<std::string> args_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

// The lines of a JSON-lines file, in order.
inline std::vector<std::string> json_lines(const std::filesystem::path& p) {
  std::vector<std::string> out;
  std::istringstream in(slurp_file(p));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// A temporary folder, removed with what is in it.
struct scratch_dir {
  std::filesystem::path path;
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "yna-it-node-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace integration
