#pragma once
// The two connections of one party: a keep-alive HTTP/1.1 connection for its requests
// and the notification WebSocket (contract §5), both C++20 coroutines over Beast.
//
// Thread: each object is made on a strand and used only from coroutines running on
// that strand (the virtual user's), so nothing here locks.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace loadgen {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using clk = std::chrono::steady_clock;

// One answer, or the reason there was none (status 0).
struct answer {
  int status = 0;
  std::string txn;   // the answer's x-transaction-id
  std::string body;
  std::string error;  // status 0: what failed (connect, write, read, timeout)
  bool timed_out = false;
  clk::time_point sent, read;  // request written from / answer read by
};

class http_conn {
 public:
  http_conn(net::any_io_executor ex, tcp::endpoint server, std::chrono::milliseconds timeout);
  // Connects when not connected, writes `req`, reads the answer. Any failure closes the
  // connection (the next send reconnects) and is returned as status 0; never throws.
  net::awaitable<answer> send(http::request<http::string_body>& req);
  void close();

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  tcp::endpoint server_;
  std::chrono::milliseconds timeout_;
  bool connected_ = false;
};

// A notification as yna-loadgen matches it: the call (last segment of callObjectRef),
// "invitation" or the status, the sequenceNumber, and when it was read.
struct frame {
  clk::time_point at;
  std::string call_id;
  std::string kind;
  std::uint64_t seq = 0;
};
// Nullopt when `text` is neither notification type or has no callObjectRef.
std::optional<frame> parse_frame(std::string_view text, clk::time_point at);

class notification_socket {
 public:
  notification_socket(net::any_io_executor ex, tcp::endpoint server, std::string token);
  // Connects and upgrades GET /notifications (…?since=N after the first frame, so a
  // reopened socket misses nothing). Returns an empty string on success, else why not.
  net::awaitable<std::string> open(std::string_view base_path, std::chrono::milliseconds timeout);
  // Reads frames into `inbox` until the socket fails or is closed, calling `on_frame`
  // after each one and `on_close` once at the end (on the same strand).
  net::awaitable<void> read_loop(std::function<void()> on_frame, std::function<void(std::string)> on_close);
  void close();
  bool is_open() const noexcept { return open_; }

  std::deque<frame> inbox;
  std::uint64_t frames_read = 0;

 private:
  beast::websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  tcp::endpoint server_;
  std::string token_;
  std::uint64_t last_seq_ = 0;
  bool open_ = false;
};

}  // namespace loadgen
