#include "tests/loadgen/fake_engine.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace loadgen_test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// An accepted notification socket. Written only by notify(), under its mutex; never
// read (the loadgen sends nothing on it).
struct fake_engine::ws_conn {
  explicit ws_conn(tcp::socket s) : ws(std::move(s)) {}
  websocket::stream<tcp::socket> ws;
  std::string authorization;
  std::mutex mu;
};

fake_engine::fake_engine(handler on_request)
    : on_request_(std::move(on_request)), acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  acceptor_thread_ = std::thread([this] { accept_loop(); });
}

fake_engine::~fake_engine() {
  stopping_ = true;
  {  // wake accept() with a connection of our own
    beast::error_code ec;
    tcp::socket s(ioc_);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
  }
  acceptor_thread_.join();
  {
    std::lock_guard lk(mu_);
    for (auto& s : open_) {
      beast::error_code ec;
      s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& w : ws_) {
      beast::error_code ec;
      beast::get_lowest_layer(w->ws).shutdown(tcp::socket::shutdown_both, ec);
    }
  }
  for (auto& t : threads_) t.join();
}

void fake_engine::accept_loop() {
  for (;;) {
    auto s = std::make_shared<tcp::socket>(ioc_);
    beast::error_code ec;
    acceptor_.accept(*s, ec);
    if (stopping_) return;
    if (ec) continue;
    std::lock_guard lk(mu_);
    open_.push_back(s);
    threads_.emplace_back([this, s] { serve(s); });
  }
}

void fake_engine::serve(std::shared_ptr<tcp::socket> s) {
  beast::flat_buffer buf;
  for (;;) {
    http::request<http::string_body> req;
    beast::error_code ec;
    http::read(*s, buf, req, ec);
    if (ec) return;
    if (websocket::is_upgrade(req)) {
      std::shared_ptr<ws_conn> c;
      {  // moving empties *s, which ~fake_engine reads (under mu_) to shut it down
        std::lock_guard lk(mu_);
        c = std::make_shared<ws_conn>(std::move(*s));
      }
      c->authorization = std::string(req[http::field::authorization]);
      c->ws.accept(req, ec);
      if (ec) return;
      ++sockets_;
      std::lock_guard lk(mu_);
      ws_.push_back(c);
      return;
    }
    ++requests_;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    if (on_request_(req, res) == verdict::drop) {
      // Shut down, not closed: ~fake_engine shuts every socket of open_ down from its own
      // thread, and a close here would race with that (the socket closes with open_).
      s->shutdown(tcp::socket::shutdown_both, ec);
      return;
    }
    res.prepare_payload();
    http::write(*s, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

void fake_engine::notify_others(const std::string& authorization, const std::string& text) {
  std::vector<std::shared_ptr<ws_conn>> targets;
  {
    std::lock_guard lk(mu_);
    for (auto& w : ws_)
      if (w->authorization != authorization) targets.push_back(w);
  }
  for (auto& w : targets) {
    std::lock_guard lk(w->mu);
    beast::error_code ec;
    w->ws.text(true);
    w->ws.write(net::buffer(text), ec);
  }
}

}  // namespace loadgen_test
