#include "tools/loadgen/client.hpp"

#include <charconv>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>

namespace loadgen {

namespace websocket = beast::websocket;

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

// The string value of the first `"key":"…"` in text (no escapes: the engine writes
// these fields without any).
std::string_view string_field(std::string_view text, std::string_view key) {
  std::string pat;
  pat.reserve(key.size() + 4);
  pat += '"';
  pat += key;
  pat += "\":\"";
  const auto at = text.find(pat);
  if (at == std::string_view::npos) return {};
  const auto from = at + pat.size();
  const auto to = text.find('"', from);
  return to == std::string_view::npos ? std::string_view{} : text.substr(from, to - from);
}

}  // namespace

http_conn::http_conn(net::any_io_executor ex, tcp::endpoint server, std::chrono::milliseconds timeout)
    : stream_(std::move(ex)), server_(server), timeout_(timeout) {}

void http_conn::close() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  buf_.clear();
  connected_ = false;
}

net::awaitable<answer> http_conn::send(http::request<http::string_body>& req) {
  answer a;
  auto fail = [&](beast::error_code ec, std::string_view what) {
    a.status = 0;
    a.timed_out = ec == beast::error::timeout;
    a.error = std::string(what) + ": " + ec.message();
    a.read = clk::now();
    close();
  };
  if (!connected_) {
    stream_.expires_after(timeout_);
    auto [ec] = co_await stream_.async_connect(server_, tuple_awaitable);
    if (ec) {
      fail(ec, "connect");
      co_return a;
    }
    stream_.socket().set_option(tcp::no_delay(true), ec);
    connected_ = true;
  }
  a.sent = clk::now();
  stream_.expires_after(timeout_);
  if (auto [ec, n] = co_await http::async_write(stream_, req, tuple_awaitable); ec) {
    fail(ec, "write");
    co_return a;
  }
  http::response<http::string_body> res;
  if (auto [ec, n] = co_await http::async_read(stream_, buf_, res, tuple_awaitable); ec) {
    fail(ec, "read");
    co_return a;
  }
  a.read = clk::now();
  a.status = static_cast<int>(res.result_int());
  if (auto it = res.find("x-transaction-id"); it != res.end()) a.txn = std::string(it->value());
  a.body = std::move(res.body());
  if (!res.keep_alive()) close();
  co_return a;
}

std::optional<frame> parse_frame(std::string_view text, clk::time_point at) {
  frame f;
  f.at = at;
  const std::string_view ref = string_field(text, "callObjectRef");
  const auto slash = ref.rfind('/');
  if (slash == std::string_view::npos) return std::nullopt;
  f.call_id = std::string(ref.substr(slash + 1));
  if (text.find("\"sessionInvitationNotification\"") != std::string_view::npos) {
    f.kind = "invitation";
  } else if (text.find("\"sessionStatusNotification\"") != std::string_view::npos) {
    f.kind = std::string(string_field(text, "status"));
  } else {
    return std::nullopt;
  }
  constexpr std::string_view seq_key = "\"sequenceNumber\":";
  if (const auto s = text.find(seq_key); s != std::string_view::npos) {
    const char* p = text.data() + s + seq_key.size();
    std::from_chars(p, text.data() + text.size(), f.seq);
  }
  return f;
}

notification_socket::notification_socket(net::any_io_executor ex, tcp::endpoint server, std::string token)
    : ws_(std::move(ex)), server_(server), token_(std::move(token)) {}

net::awaitable<std::string> notification_socket::open(std::string_view base_path, std::chrono::milliseconds timeout) {
  auto& lowest = beast::get_lowest_layer(ws_);
  lowest.expires_after(timeout);
  if (auto [ec] = co_await lowest.async_connect(server_, tuple_awaitable); ec) {
    lowest.close();
    co_return "connect: " + ec.message();
  }
  beast::error_code ignored;
  lowest.socket().set_option(tcp::no_delay(true), ignored);
  lowest.expires_never();
  auto t = websocket::stream_base::timeout::suggested(beast::role_type::client);
  t.handshake_timeout = timeout;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator(
      [auth = "Bearer " + token_](websocket::request_type& r) { r.set(http::field::authorization, auth); }));
  std::string target = std::string(base_path) + "/notifications";
  if (last_seq_ > 0) target += "?since=" + std::to_string(last_seq_);
  websocket::response_type res;
  if (auto [ec] = co_await ws_.async_handshake(res, server_.address().to_string(), target, tuple_awaitable); ec) {
    lowest.close();
    co_return "upgrade: " + ec.message() + (res.result_int() ? " (HTTP " + std::to_string(res.result_int()) + ")" : "");
  }
  open_ = true;
  co_return std::string{};
}

net::awaitable<void> notification_socket::read_loop(std::function<void()> on_frame,
                                                    std::function<void(std::string)> on_close) {
  for (;;) {
    auto [ec, n] = co_await ws_.async_read(buf_, tuple_awaitable);
    if (ec) {
      open_ = false;
      on_close(ec.message());
      co_return;
    }
    const auto at = clk::now();
    const auto data = buf_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (auto f = parse_frame(text, at)) {
      if (f->seq > last_seq_) last_seq_ = f->seq;
      inbox.push_back(std::move(*f));
    } else {
      inbox.push_back(frame{at, {}, "unparsed", 0});
    }
    ++frames_read;
    buf_.consume(buf_.size());
    on_frame();
  }
}

void notification_socket::close() {
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws_).close();
  open_ = false;
}

}  // namespace loadgen
