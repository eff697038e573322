#pragma once
// The engine's admin socket (contract §9): a Unix stream socket in the data folder
// (<data-dir>/admin.sock unless --admin-socket), owner-only (0600, and the peer's uid
// must be the engine's or root), through which `yna-tool archive` asks the running
// engine to move an archived range out of its log. Composed in by main.cpp, like
// fault_route.cpp: it is the one part of transport that touches storage.
//
// One thread serves it, one connection at a time (a second waits in the backlog). The
// client sends one JSON line; the engine answers with JSON lines, progress first, then
// one final line with "ok":
//   {"op":"anchor"}
//     -> {"ok":true,"anchor":{"seq":N,"hash":"…"},"lastSeq":N}
//   {"op":"remove-archived","archive":"/absolute/path"}
//     -> {"stage":"checking"|"folding"|"removing","done":N,"total":N}  (every ~200 ms)
//     -> {"ok":true,"firstSeq":a,"lastSeq":b,"calls":n,"removed":n,"anchor":{…},"ms":n}
//   anything else, or a failure
//     -> {"ok":false,"error":"one line"}
// The removal itself is storage::event_log::remove_archived, on this thread, while the
// engine serves (its writes go through the log's writer thread, between appends). Before it
// listens, the thread finishes a removal a crash cut short (purge_archived).
#include <atomic>
#include <filesystem>
#include <thread>

namespace storage {
class event_log;
}

namespace transport {

class admin_socket {
 public:
  admin_socket(std::filesystem::path path, storage::event_log& log);
  ~admin_socket();  // stop()
  admin_socket(const admin_socket&) = delete;
  admin_socket& operator=(const admin_socket&) = delete;

  // Binds (replacing a stale socket file: the log's lock says no other engine uses this
  // folder), sets 0600 before listening, starts the thread. Throws std::runtime_error
  // naming the cause (a path too long for a Unix socket, permissions).
  void start();
  // Stops the thread (a removal in progress finishes first) and removes the socket file.
  void stop();

 private:
  void run();
  void serve(int fd);

  std::filesystem::path path_;
  storage::event_log& log_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() wakes the thread's poll
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace transport
