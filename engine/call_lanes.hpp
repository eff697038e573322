#pragma once
// Per-call lanes: the reactor's ordering rule. While an event of a call (or of a /start
// key, or a read of a call not in memory) is on its way, that key's lane is taken, and
// requests on the same key wait in the lane in arrival order. When the event is durable
// the lane passes to the first waiting request, which is decided then, against durable
// state: every decision sees the state its predecessors left, and a failed write never
// has to be undone. Reactor thread only.
#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

namespace engine {

template <class Request>
class call_lanes {
 public:
  bool taken(const std::string& key) const { return lanes_.find(key) != lanes_.end(); }
  // Takes the free lane of `key`.
  void take(std::string key) { lanes_.try_emplace(std::move(key)); }
  // Queues `r` behind the holder of `key`'s lane. False, with `r` untouched, when the lane
  // is free.
  bool wait(const std::string& key, Request& r) {
    auto it = lanes_.find(key);
    if (it == lanes_.end()) return false;
    it->second.push_back(std::move(r));
    return true;
  }
  // Queues `r` in `key`'s lane whether or not it is taken: it goes after what was just
  // decided on that key (a passed deadline's expiry).
  void wait_behind(const std::string& key, Request&& r) { lanes_[key].push_back(std::move(r)); }
  // Frees the lane without passing it on (its holder needed no write, and nobody can
  // have queued behind it yet).
  void drop(const std::string& key) { lanes_.erase(key); }

  // Frees `key`'s lane and hands the waiting requests, oldest first, to `handle` (which
  // decides each one, and may take the lane again): as soon as one takes it, the rest
  // keep waiting behind that one.
  template <class Handle>
  void release(const std::string& key, Handle&& handle) {
    if (key.empty()) return;
    auto it = lanes_.find(key);
    while (it != lanes_.end() && !it->second.empty()) {
      std::deque<Request> rest = std::move(it->second);
      lanes_.erase(it);
      Request next = std::move(rest.front());
      rest.pop_front();
      handle(std::move(next));
      it = lanes_.find(key);
      if (it != lanes_.end()) {  // `next` is on its way to the log: the rest wait for it
        for (auto& w : rest) it->second.push_back(std::move(w));
        return;
      }
      if (rest.empty()) return;  // `next` needed no write (e.g. timed out) and nobody else waits
      it = lanes_.emplace(key, std::move(rest)).first;
    }
    if (it != lanes_.end()) lanes_.erase(it);
  }

  // Every waiting request, to `f` (the shut-down refuses them); then no lane is taken.
  template <class F>
  void drain(F&& f) {
    for (auto& [key, waiting] : lanes_)
      for (auto& r : waiting) f(r);
    lanes_.clear();
  }

  std::size_t taken_count() const { return lanes_.size(); }

 private:
  std::unordered_map<std::string, std::deque<Request>> lanes_;  // taken lanes -> waiting requests
};

}  // namespace engine
