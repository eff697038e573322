#pragma once
// Waiting for a state another thread reaches soon (never for a fixed time): polls `done`
// every 10 ms for at most `limit`. True once it held. Generous limits: the suites run
// again under ASan and TSan on two busy cores.
#include <chrono>
#include <thread>

namespace test_support {

template <class Pred>
bool wait_until(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

}  // namespace test_support
