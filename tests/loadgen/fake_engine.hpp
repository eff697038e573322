#pragma once
// A stand-in for yna-engine that misbehaves on demand, so the loadgen tests can check
// that yna-loadgen notices: a blocking Beast server on 127.0.0.1:0, one thread per
// connection, that answers HTTP through `on_request` and accepts WebSocket upgrades on
// /notifications (sending frames only when a test pushes them with `notify`).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

namespace loadgen_test {

namespace http = boost::beast::http;

enum class verdict { answer, drop };  // write the response / close the connection unanswered

class fake_engine {
 public:
  using handler = std::function<verdict(const http::request<http::string_body>&, http::response<http::string_body>&)>;
  // on_request answers every HTTP request (the response starts as 200, JSON, keep-alive)
  // on the connection's thread. Tokens are never verified.
  explicit fake_engine(handler on_request);
  ~fake_engine();
  fake_engine(const fake_engine&) = delete;
  fake_engine& operator=(const fake_engine&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  std::size_t requests() const noexcept { return requests_.load(); }
  std::size_t sockets() const noexcept { return sockets_.load(); }
  // Sends `text` on every open notification socket whose upgrade did not carry
  // `authorization` (with one virtual user: the other party's socket).
  void notify_others(const std::string& authorization, const std::string& text);

 private:
  struct ws_conn;
  void accept_loop();
  void serve(std::shared_ptr<boost::asio::ip::tcp::socket> s);

  handler on_request_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> requests_{0}, sockets_{0};
  std::mutex mu_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> open_;
  std::vector<std::shared_ptr<ws_conn>> ws_;
  std::vector<std::thread> threads_;
  std::thread acceptor_thread_;
};

}  // namespace loadgen_test
