#pragma once
// A blocking WebSocket client for the notification channel (contract §5), over Beast.
// One client per thread.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/harness.hpp"

namespace integration {

// Frames are read by a background thread into a queue, so a wait can time out without
// spoiling the socket.
class ws_client {
 public:
  // Connects to 127.0.0.1:port and upgrades `target` (e.g. "/notifications?since=5")
  // with `headers`. Throws on failure; for a refused upgrade, http_status() says why.
  // With read = false the client never reads from the socket (a stalled reader).
  static std::unique_ptr<ws_client> connect(std::uint16_t port, std::string_view target, const header_list& headers = {},
                                            bool read = true);
  // The HTTP status of a refused upgrade, or 0 when connect() would succeed.
  static int refused_status(std::uint16_t port, std::string_view target, const header_list& headers = {});
  ~ws_client();

  // Next text frame, or nullopt when none arrives within `timeout` or the socket closed.
  std::optional<std::string> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Every frame arriving until `quiet` passes without one.
  std::vector<std::string> drain(std::chrono::milliseconds quiet = std::chrono::milliseconds(300));
  // True once the server closed the socket (seen by a read).
  bool closed() const;
  // The code and reason of the server's close frame (0 and "" when it sent none).
  int close_code() const;
  std::string close_reason() const;
  void close();

  struct impl;
  explicit ws_client(std::unique_ptr<impl> p);

 private:
  std::unique_ptr<impl> impl_;
};

// sequenceNumber of a notification frame, 0 when absent.
std::uint64_t frame_seq(std::string_view frame);
// "sessionInvitationNotification" or "sessionStatusNotification" (the wrapper key).
std::string frame_type(std::string_view frame);
// status of a status notification, "" otherwise.
std::string frame_status(std::string_view frame);

}  // namespace integration
