#pragma once
// What the reactor hands to one I/O thread (replies to render and write, notification
// frames to queue), collected while the reactor works through a batch and handed over
// in one post when it is done (engine::reactor::set_after_batch): one wake-up per I/O
// thread per batch instead of one per reply and per frame. An I/O thread that has a
// hand-off queued already (it has not run it yet) is not signalled again; what arrives
// meanwhile joins it. Private to server.cpp and ws_session.hpp.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <functional>
#include <mutex>
#include <vector>

namespace transport::detail {

class handoff {
 public:
  using item = std::function<void()>;

  explicit handoff(boost::asio::io_context& ioc) : ioc_(ioc) {}
  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;

  // Any thread (the reactor's): runs `f` on this I/O thread after the next flush().
  void push(item f) {
    std::lock_guard lk(mu_);
    items_.push_back(std::move(f));
  }

  // Any thread: hands what was pushed to the I/O thread, unless a hand-off is queued
  // there already (it will take these too).
  void flush() {
    {
      std::lock_guard lk(mu_);
      if (items_.empty() || posted_) return;
      posted_ = true;
    }
    boost::asio::post(ioc_, [this] { drain(); });
  }

  boost::asio::io_context& context() { return ioc_; }

 private:
  // On the I/O thread.
  void drain() {
    {
      std::lock_guard lk(mu_);
      running_.swap(items_);
      posted_ = false;
    }
    for (auto& f : running_) f();
    running_.clear();  // keeps the capacity: no allocation for the vector in steady state
  }

  boost::asio::io_context& ioc_;
  std::mutex mu_;
  std::vector<item> items_;    // under mu_
  bool posted_ = false;        // under mu_: a drain() is queued on ioc_ and has not taken items_
  std::vector<item> running_;  // I/O thread only
};

}  // namespace transport::detail
