#pragma once
// Connection slots (contract §3a): the server's --max-connections, plus a few reserved
// for health checks, per client address (--max-connections-per-ip) and notification
// sockets per subject (--max-sockets-per-sub). A slot is a move-only guard: the count
// drops when it is destroyed, wherever the connection ends (an HTTP session, or the
// WebSocket it became). Thread-safe: slots are taken on the accepting thread and
// released on any I/O thread. 0 in an option means "no limit".
// The per-address and per-subject tables hold an entry only while it holds a slot (it
// is erased when its count drops to 0), so their size is bounded by the connections;
// each table's size is mirrored into a gauge when one is given.
#include <atomic>
#include <cassert>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/metrics.hpp"

namespace transport::detail {

class slot_guard {
 public:
  slot_guard() = default;
  explicit slot_guard(std::function<void()> release) : release_(std::move(release)) {}
  slot_guard(slot_guard&& o) noexcept : release_(std::exchange(o.release_, nullptr)) {}
  slot_guard& operator=(slot_guard&& o) noexcept {
    if (this != &o) {
      reset();
      release_ = std::exchange(o.release_, nullptr);
    }
    return *this;
  }
  slot_guard(const slot_guard&) = delete;
  slot_guard& operator=(const slot_guard&) = delete;
  ~slot_guard() { reset(); }
  void reset() {
    if (release_) std::exchange(release_, nullptr)();
  }

 private:
  std::function<void()> release_;
};

struct conn_limit_options {
  std::size_t max_connections = 10000;
  std::size_t health_slots = 8;          // beyond max_connections, only for /healthz and /readyz
  std::size_t max_per_ip = 256;
  std::size_t max_sockets_per_sub = 32;  // notification WebSockets of one subject
};

// Gauges of the tables' sizes (may be null).
struct conn_limit_gauges {
  engine::gauge* addresses = nullptr;
  engine::gauge* subjects = nullptr;
};

class conn_limits {
 public:
  explicit conn_limits(conn_limit_options o, conn_limit_gauges g = {}) : o_(o) {
    per_ip_.size = g.addresses;
    per_sub_.size = g.subjects;
  }

  // A connection slot, or nullopt when every slot and every health slot is taken.
  // `health_only` is set when the slot is one of the reserved ones.
  std::optional<slot_guard> acquire_connection(bool& health_only) {
    health_only = false;
    if (o_.max_connections == 0 || total_.fetch_add(1) < o_.max_connections)
      return slot_guard([this] { total_.fetch_sub(1); });
    total_.fetch_sub(1);
    if (health_.fetch_add(1) < o_.health_slots) {
      health_only = true;
      return slot_guard([this] { health_.fetch_sub(1); });
    }
    health_.fetch_sub(1);
    return std::nullopt;
  }
  std::optional<slot_guard> acquire_ip(const std::string& ip) { return acquire(per_ip_, ip, o_.max_per_ip); }
  std::optional<slot_guard> acquire_sub(const std::string& sub) { return acquire(per_sub_, sub, o_.max_sockets_per_sub); }

  std::size_t connections() const { return total_.load(); }
  std::size_t addresses() const { return size(per_ip_); }
  std::size_t subjects() const { return size(per_sub_); }

 private:
  struct table {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::size_t> count;  // no entry at 0
    engine::gauge* size = nullptr;
    void publish() {
      if (size) size->set(static_cast<std::int64_t>(count.size()));
    }
  };
  static std::optional<slot_guard> acquire(table& t, const std::string& key, std::size_t max) {
    if (max == 0) return slot_guard();
    std::lock_guard lk(t.mu);
    auto& n = t.count[key];
    if (n >= max) return std::nullopt;  // n > 0 here: the entry existed
    ++n;
    t.publish();
    return slot_guard([&t, key] {
      std::lock_guard lk2(t.mu);
      auto it = t.count.find(key);
      assert(it != t.count.end() && it->second > 0);  // a slot is released once, from a live entry
      if (--it->second == 0) t.count.erase(it);
      t.publish();
    });
  }
  static std::size_t size(const table& t) {
    std::lock_guard lk(t.mu);
    return t.count.size();
  }

  conn_limit_options o_;
  std::atomic<std::size_t> total_{0};
  std::atomic<std::size_t> health_{0};
  table per_ip_, per_sub_;
};

}  // namespace transport::detail
