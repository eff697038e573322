#pragma once
// The HTTP listener: Beast sessions over Asio, one io_context per I/O thread. Sessions
// only move bytes and enforce protocol limits; transport::api decides what to answer.
// Lifetime: start() binds and returns the port; run() blocks until stop().
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/metrics.hpp"
#include "transport/api.hpp"

namespace engine {
class reactor;
}

namespace transport {

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t threads = 2;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_connections = 10000;
  std::size_t health_slots = 8;           // beyond max_connections: /healthz and /readyz only
  std::size_t max_connections_per_ip = 256;
  std::size_t max_sockets_per_sub = 32;   // notification WebSockets per subject
  std::vector<std::string> trusted_proxies;  // addresses whose PROXY protocol v1 header names the client
  std::chrono::milliseconds first_byte_timeout{5000};  // a new connection must send its first byte by then
  std::chrono::milliseconds read_timeout{10000};  // a started request must arrive by then
  std::chrono::milliseconds idle_timeout{60000};  // keep-alive connection with no request
  std::string tls_cert_file;  // PEM chain; with tls_key_file: serve HTTPS (TLS 1.2+) only
  std::string tls_key_file;
};

class notification_hub;
class replay_worker;

struct websocket_options {
  std::size_t max_queue = 1024;                    // frames a socket may fall behind before it is cut off
  std::chrono::milliseconds idle_timeout{30000};  // ping after half of it; closed when no answer
  std::size_t max_incoming_bytes = 4096;           // client messages (ignored) larger than this close it
  std::int64_t token_leeway_s = 30;                // closed (1008) this long after its access token's exp
};

// What the notification WebSockets need; all outlive the server.
struct websocket_services {
  engine::reactor* reactor = nullptr;
  notification_hub* hub = nullptr;
  replay_worker* replay = nullptr;
  websocket_options opts;
};

class server {
 public:
  server(server_options opts, api& handler, websocket_services ws, engine::registry& metrics);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens. Returns the bound port (useful with port 0). Throws on failure
  // (start-up only), also when the TLS certificate or key cannot be loaded.
  std::uint16_t start();
  // Runs the I/O threads until stop(); returns after they have all finished.
  void run();
  // Hands what the reactor queued for each I/O thread (replies, notification frames) to
  // that thread, one post per thread: engine::reactor::set_after_batch calls it at the end
  // of each batch. Any thread.
  void flush_handoffs();
  // Stops accepting and closes every session. Any thread; the destructor waits for a
  // stop() still running on another thread.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace transport
