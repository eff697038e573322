#pragma once
// One TCP connection driven byte by byte with POSIX calls, for the tests of things a
// well-behaved client never does (idling, trickling, holding connections open, broken
// framing), and the small helpers those tests share. Header-only; test code.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/integration/harness.hpp"

namespace integration {

namespace raw_detail {
namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;
}  // namespace raw_detail


template <class Parser>
inline response to_response(Parser& p) {
  response out;
  auto& m = p.get();
  out.status = static_cast<int>(m.result_int());
  for (const auto& f : m) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  out.body = m.body();
  return out;
}

// One TCP connection driven byte by byte with POSIX calls, for the things a well-behaved
// client never does (idling, trickling, holding connections open).
class raw_conn {
 public:
  enum class outcome { eof, reset, data, timeout };

  // `source`: the local IPv4 address to connect from (e.g. "127.0.0.2", another client
  // on the loopback range); empty: any.
  explicit raw_conn(std::uint16_t port, const std::string& source = {}) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (!source.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        const int e = errno;
        ::close(fd_);
        throw std::runtime_error("bind " + source + ": " + std::strerror(e));
      }
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::runtime_error(std::string("connect: ") + std::strerror(e));
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~raw_conn() { close(); }
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  // Sends what the peer accepts without blocking longer than `timeout` in all; returns
  // the bytes sent (fewer when the peer stopped reading or closed).
  std::size_t send_some(std::string_view bytes, std::chrono::milliseconds timeout) {
    const auto deadline = raw_detail::clock_type::now() + timeout;
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - raw_detail::clock_type::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      if (p.revents & (POLLERR | POLLHUP)) break;
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    return sent;
  }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Waits up to `timeout` for something from the peer and says what it was.
  outcome wait(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r == 0) return outcome::timeout;
    char b[4096];
    const ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n == 0) return outcome::eof;
    if (n < 0) return errno == ECONNRESET ? outcome::reset : outcome::eof;
    buf_.append(b, static_cast<std::size_t>(n));
    return outcome::data;
  }

  // Waits for the peer to close; data that arrives meanwhile is kept (and returned as data).
  outcome wait_close(std::chrono::milliseconds timeout) {
    const auto deadline = raw_detail::clock_type::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - raw_detail::clock_type::now());
      if (left.count() <= 0) return outcome::timeout;
      const outcome o = wait(left);
      if (o != outcome::data) return o;
    }
  }

  // One HTTP response; nullopt when the peer closes or nothing comes within `timeout`.
  std::optional<response> read_response(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    raw_detail::http::response_parser<raw_detail::http::string_body> p;
    p.eager(true);
    p.body_limit(64 << 20);
    const auto deadline = raw_detail::clock_type::now() + timeout;
    for (;;) {
      if (!buf_.empty()) {
        boost::beast::error_code ec;
        const std::size_t used = p.put(boost::asio::buffer(buf_.data(), buf_.size()), ec);
        buf_.erase(0, used);
        if (ec && ec != raw_detail::http::error::need_more) return std::nullopt;
        if (p.is_done()) return to_response(p);
        if (used > 0 && !ec) continue;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - raw_detail::clock_type::now());
      if (left.count() <= 0) return std::nullopt;
      const std::size_t before = buf_.size();
      const outcome o = wait(left);
      if (o == outcome::data && buf_.size() > before) continue;
      if (o == outcome::eof && p.got_some() && p.need_eof()) {
        boost::beast::error_code ec;
        p.put_eof(ec);
        if (!ec && p.is_done()) return to_response(p);
      }
      return std::nullopt;
    }
  }

  void close() {
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
      fd_ = -1;
    }
  }
  int fd() const { return fd_; }
  const std::string& pending() const { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

inline std::string describe(raw_conn::outcome o) {
  switch (o) {
    case raw_conn::outcome::eof: return "closed (EOF)";
    case raw_conn::outcome::reset: return "closed (reset)";
    case raw_conn::outcome::data: return "data";
    case raw_conn::outcome::timeout: return "still open (timeout)";
  }
  return "?";
}

inline bool closed(raw_conn::outcome o) { return o == raw_conn::outcome::eof || o == raw_conn::outcome::reset; }

inline std::string get_request(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra_headers) + "\r\n";
}

// Polls `pred` every 20 ms for up to `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = raw_detail::clock_type::now() + limit;
  while (raw_detail::clock_type::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace integration
