#include "tests/integration/ws_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace integration {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

struct ws_client::impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buf;
  std::thread reader;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  bool closed = false;
  int close_code = 0;  // from the server's close frame; 0 without one
  std::string close_reason;

  void read_loop() {
    for (;;) {
      beast::error_code ec;
      ws.read(buf, ec);
      std::lock_guard lk(mu);
      if (ec) {
        if (ec == websocket::error::closed) {
          close_code = static_cast<int>(ws.reason().code);
          close_reason = std::string(ws.reason().reason.data(), ws.reason().reason.size());
        }
        closed = true;
        cv.notify_all();
        return;
      }
      frames.push_back(beast::buffers_to_string(buf.data()));
      buf.consume(buf.size());
      cv.notify_all();
    }
  }

  ~impl() {
    // shutdown() wakes the reader's blocking read; close only once it has returned: closing
    // the descriptor under a read in progress is a race (ThreadSanitizer reports it, and the
    // number could be reused by another socket before the read sees it gone).
    beast::error_code ec;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ec);
    if (reader.joinable()) reader.join();
    beast::get_lowest_layer(ws).socket().close(ec);
  }
};

ws_client::ws_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
ws_client::~ws_client() = default;

namespace {

std::unique_ptr<ws_client::impl> open(std::uint16_t port, std::string_view target, const header_list& headers,
                                      int& refused) {
  auto p = std::make_unique<ws_client::impl>();
  auto& lowest = beast::get_lowest_layer(p->ws);
  lowest.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  p->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  beast::error_code ec;
  p->ws.handshake(res, "127.0.0.1:" + std::to_string(port), std::string(target), ec);
  refused = ec ? (res.result_int() ? static_cast<int>(res.result_int()) : -1) : 0;
  if (ec) return nullptr;
  return p;
}

}  // namespace

std::unique_ptr<ws_client> ws_client::connect(std::uint16_t port, std::string_view target, const header_list& headers,
                                              bool read) {
  int refused = 0;
  auto p = open(port, target, headers, refused);
  if (!p) throw std::runtime_error("websocket upgrade refused with HTTP " + std::to_string(refused));
  if (read) {
    auto* raw = p.get();
    p->reader = std::thread([raw] { raw->read_loop(); });
  }
  return std::make_unique<ws_client>(std::move(p));
}

int ws_client::refused_status(std::uint16_t port, std::string_view target, const header_list& headers) {
  int refused = 0;
  auto p = open(port, target, headers, refused);
  return p ? 0 : refused;
}

std::optional<std::string> ws_client::next(std::chrono::milliseconds timeout) {
  std::unique_lock lk(impl_->mu);
  impl_->cv.wait_for(lk, timeout, [&] { return !impl_->frames.empty() || impl_->closed; });
  if (impl_->frames.empty()) return std::nullopt;
  std::string f = std::move(impl_->frames.front());
  impl_->frames.pop_front();
  return f;
}

std::vector<std::string> ws_client::drain(std::chrono::milliseconds quiet) {
  std::vector<std::string> out;
  while (auto f = next(quiet)) out.push_back(std::move(*f));
  return out;
}

bool ws_client::closed() const {
  std::lock_guard lk(impl_->mu);
  return impl_->closed && impl_->frames.empty();
}

int ws_client::close_code() const {
  std::lock_guard lk(impl_->mu);
  return impl_->close_code;
}

std::string ws_client::close_reason() const {
  std::lock_guard lk(impl_->mu);
  return impl_->close_reason;
}

void ws_client::close() {
  beast::error_code ec;
  beast::get_lowest_layer(impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ec);
}

std::uint64_t frame_seq(std::string_view frame) {
  return static_cast<std::uint64_t>(
      json_int(frame, "/" + frame_type(frame) + "/notificationReference/sequenceNumber").value_or(0));
}

std::string frame_type(std::string_view frame) {
  if (frame.rfind("{\"sessionInvitationNotification\"", 0) == 0) return "sessionInvitationNotification";
  if (frame.rfind("{\"sessionStatusNotification\"", 0) == 0) return "sessionStatusNotification";
  return {};
}

std::string frame_status(std::string_view frame) {
  return json_str(frame, "/sessionStatusNotification/status").value_or("");
}

}  // namespace integration
