#include "transport/admin_socket.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include <simdjson.h>

#include "engine/log.hpp"
#include "schemas/json_writer.hpp"
#include "storage/event_log.hpp"

namespace transport {
namespace {

constexpr std::size_t max_request = 64 * 1024;
constexpr int request_timeout_s = 10;

bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string error_line(std::string_view what) {
  schemas::json_writer w;
  w.begin_object().field("ok", false).field("error", what).end_object();
  return w.take() + "\n";
}

void anchor_object(schemas::json_writer& w, const storage::log_anchor& a) {
  w.key("anchor").begin_object().field("seq", std::uint64_t{a.seq}).field("hash", std::string_view(a.hash)).end_object();
}

}  // namespace

admin_socket::admin_socket(std::filesystem::path path, storage::event_log& log) : path_(std::move(path)), log_(log) {}

admin_socket::~admin_socket() { stop(); }

void admin_socket::start() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = path_.string();
  if (p.size() >= sizeof addr.sun_path)
    throw std::runtime_error("admin socket path " + p + " is longer than a Unix socket allows (" +
                             std::to_string(sizeof addr.sun_path - 1) + " bytes): set --admin-socket");
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error(std::string("admin socket: ") + std::strerror(errno));
  // A file left by an engine that was killed: the log's lock (held by now) says no other
  // engine serves this folder.
  ::unlink(p.c_str());
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("admin socket " + p + ": bind: " + std::strerror(errno));
  // Owner-only before anyone can connect: connecting needs write permission, and before
  // listen() a connect is refused anyway.
  if (::chmod(p.c_str(), 0600) != 0 || ::listen(listen_fd_, 4) != 0)
    throw std::runtime_error("admin socket " + p + ": " + std::strerror(errno));
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("admin socket: eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] {
    engine::log::name_this_thread("yna-admin");
    run();
  });
}

void admin_socket::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void admin_socket::run() {
  // A removal a crash cut short: its range is already out of every read; give the disk back.
  if (auto purged = log_.purge_archived(); !purged)
    engine::log::warn("admin: finishing an interrupted archive removal failed: {}", purged.error());
  else if (*purged > 0)
    engine::log::info("admin: finished an interrupted archive removal ({} events)", *purged);
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      engine::log::warn("admin socket: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0 || stopping_.load()) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    serve(fd);
    ::close(fd);
  }
}

void admin_socket::serve(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || (peer.uid != ::geteuid() && peer.uid != 0)) {
    write_all(fd, error_line("permission denied: only the engine's user may use its admin socket"));
    return;
  }
  timeval tv{request_timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string line;
  char buf[4096];
  while (line.find('\n') == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!line.empty()) write_all(fd, error_line("the request must be one JSON line ending in a newline"));
      return;
    }
    line.append(buf, static_cast<std::size_t>(n));
    if (line.size() > max_request) {
      write_all(fd, error_line("request too long"));
      return;
    }
  }
  line.resize(line.find('\n'));

  simdjson::dom::parser parser;
  simdjson::dom::object req;
  std::string_view op;
  if (parser.parse(line).get_object().get(req) || req["op"].get_string().get(op)) {
    write_all(fd, error_line("the request is not a JSON object with an \"op\""));
    return;
  }
  if (op == "anchor") {
    schemas::json_writer w;
    w.begin_object().field("ok", true);
    anchor_object(w, log_.anchor());
    w.field("lastSeq", std::uint64_t{log_.last_seq()}).end_object();
    write_all(fd, w.take() + "\n");
    return;
  }
  if (op != "remove-archived") {
    write_all(fd, error_line("unknown op '" + std::string(op.substr(0, 40)) + "' (anchor, remove-archived)"));
    return;
  }
  std::string_view archive;
  if (req["archive"].get_string().get(archive) || archive.empty() || archive.front() != '/') {
    write_all(fd, error_line("remove-archived needs \"archive\": the archive file's absolute path"));
    return;
  }
  engine::log::info("admin: removing the range of archive {} from the live log", archive);
  auto last_progress = std::chrono::steady_clock::now();
  bool client_gone = false;
  auto rep = log_.remove_archived(std::filesystem::path(archive), [&](std::string_view stage, std::uint64_t done,
                                                                       std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (client_gone || now - last_progress < std::chrono::milliseconds(200)) return;
    last_progress = now;
    schemas::json_writer w;
    w.begin_object().field("stage", stage).field("done", done).field("total", total).end_object();
    client_gone = !write_all(fd, w.take() + "\n");  // the job goes on without it
  });
  if (!rep) {
    engine::log::warn("admin: archive {} not removed: {}", archive, rep.error());
    write_all(fd, error_line(rep.error()));
    return;
  }
  engine::log::info("admin: events {}..{} archived out of the live log ({} calls kept as final states, {} events "
                    "removed, {:.1f} s); the live log starts at event {}",
                    rep->first_seq, rep->last_seq, rep->calls, rep->removed, rep->seconds, rep->anchor.seq + 1);
  schemas::json_writer w;
  w.begin_object().field("ok", true).field("firstSeq", std::uint64_t{rep->first_seq});
  w.field("lastSeq", std::uint64_t{rep->last_seq}).field("calls", rep->calls).field("removed", rep->removed);
  anchor_object(w, rep->anchor);
  w.field("ms", static_cast<std::int64_t>(rep->seconds * 1000));
  w.end_object();
  write_all(fd, w.take() + "\n");
}

}  // namespace transport
