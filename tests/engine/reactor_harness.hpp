#pragma once
// A reactor on its own thread over a memory_store and a manual clock, with commands of
// the two parties of call 14250000001 -> 14250000002: shared by the reactor and timer tests.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "engine/reactor.hpp"
#include "tests/common/wait_until.hpp"

namespace reactor_test {

using namespace engine;
using schemas::reason_code;

inline constexpr const char* sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";

struct harness {
  memory_store store;
  manual_clock clk;
  registry metrics;
  reactor r;
  std::thread th;

  explicit harness(reactor_options o = uncapped(), call_table recovered = {})
      : r(store, clk, metrics, std::move(o), std::move(recovered)) {}
  // The default options but without the call caps (contract §3a): most tests start many
  // calls between the same two numbers. The caps are tested in call_caps_test.cpp.
  static reactor_options uncapped() {
    reactor_options o;
    o.caps = call_caps{0, 0};
    return o;
  }
  ~harness() {
    r.stop();
    if (th.joinable()) th.join();
  }
  void start() { th = std::thread([this] { r.run(); }); }

  std::future<reply> submit(command c) {
    auto p = std::make_shared<std::promise<reply>>();
    auto f = p->get_future();
    REQUIRE(r.submit(std::move(c), [p](reply rep) { p->set_value(std::move(rep)); }));
    return f;
  }
  reply call(command c) { return submit(std::move(c)).get(); }

  // Waits (at most 10 s) until `done()` holds; false if it never did.
  template <class Pred>
  bool wait_until(Pred done) {
    return test_support::wait_until(done);
  }
};

inline command start_cmd(std::string id, std::optional<std::string> corr = std::nullopt) {
  command c;
  c.act = action::start;
  c.new_call_id = std::move(id);
  c.who = actor{"a", "dev-a", {"14250000001"}, false, ""};
  c.from = "14250000001";
  c.to = "14250000002";
  c.sdp = sdp;
  c.client_correlator = std::move(corr);
  c.method = "POST";
  c.path = "/start";
  return c;
}

inline command mt_cmd(action a, std::string id) {
  command c;
  c.act = a;
  c.call_id = std::move(id);
  c.who = actor{"b", "dev-b", {"14250000002"}, false, ""};
  c.sdp = sdp;
  c.method = "POST";
  return c;
}

inline command mo_cmd(action a, std::string id) {
  command c = mt_cmd(a, std::move(id));
  c.who = actor{"a", "dev-a", {"14250000001"}, false, ""};
  return c;
}

}  // namespace reactor_test
