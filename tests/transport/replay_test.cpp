#include "transport/replay.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

TEST_CASE("replay: a lease holds its bytes against the budget until released, moved or destroyed") {
  engine::gauge g;
  auto budget = std::make_shared<transport::replay_budget>();
  budget->gauge = &g;
  {
    transport::replay_lease a(budget, 1000);
    CHECK(budget->held == 1000);
    a.release(300);  // a frame written
    CHECK(g.value() == 700);
    transport::replay_lease b = std::move(a);  // moved: held once
    CHECK(budget->held == 700);
    b.release(5000);  // never more than it holds
    CHECK(budget->held == 0);
    transport::replay_lease c(budget, 40);
    b = std::move(c);
    CHECK(g.value() == 40);
  }  // destroyed: the rest comes back
  CHECK(budget->held == 0);
  CHECK(g.value() == 0);
}

TEST_CASE("replay: at most max_jobs replays wait; more are refused, counted, and the gauge falls back") {
  engine::registry m;
  std::promise<void> go, running;
  auto wait = go.get_future().share();
  std::mutex mu;
  int failed = 0;  // jobs answered "not available" (no reader)
  transport::replay_worker w(nullptr, "", transport::replay_limits{10, 2, 1000}, &m);
  // The first job blocks the worker; two more wait; the fourth is refused.
  REQUIRE(w.submit({{}, "", "", 0, 1, [&, wait](transport::replay_result) {
                      running.set_value();
                      wait.wait();
                    }}));
  running.get_future().wait();
  auto count = [&](transport::replay_result r) {
    std::lock_guard lk(mu);
    failed += !r.ok;
  };
  CHECK(w.submit({{}, "", "", 0, 1, count}));
  CHECK(w.submit({{}, "", "", 0, 1, count}));
  CHECK_FALSE(w.submit({{}, "", "", 0, 1, count}));
  CHECK(m.get_gauge("yna_ws_replay_jobs", "").value() == 2);
  CHECK(m.get_counter("yna_ws_replay_refused_total", "", "why=\"jobs\"").value() == 1);
  go.set_value();
  for (int i = 0; i < 1000 && m.get_gauge("yna_ws_replay_jobs", "").value() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(m.get_gauge("yna_ws_replay_jobs", "").value() == 0);
  for (int i = 0; i < 1000 && [&] { std::lock_guard lk(mu); return failed; }() != 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::lock_guard lk(mu);
  CHECK(failed == 2);
}
