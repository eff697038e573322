// transport/detail/handoff.hpp: what the reactor hands to one I/O thread runs there, in
// order, after a flush, with one post for everything pushed before it.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "transport/detail/handoff.hpp"

using transport::detail::handoff;

TEST_CASE("handoff: nothing runs before flush; a flush hands over everything pushed, in order, in one post") {
  boost::asio::io_context ioc(1);
  handoff lane(ioc);
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i) lane.push([&ran, i] { ran.push_back(i); });
  CHECK(ioc.poll() == 0);  // not flushed: nothing posted
  CHECK(ran.empty());
  ioc.restart();  // poll() ran out of work: the context stopped
  lane.flush();
  lane.flush();                // already queued: no second post
  CHECK(ioc.poll() == 1);      // one handler ran all five
  CHECK(ran == std::vector<int>{0, 1, 2, 3, 4});
  ioc.restart();
  lane.flush();  // nothing pushed: nothing posted
  CHECK(ioc.poll() == 0);
}

TEST_CASE("handoff: what is pushed while a hand-off is queued joins it; after it ran, the next flush posts again") {
  boost::asio::io_context ioc(1);
  handoff lane(ioc);
  int ran = 0;
  lane.push([&] { ++ran; });
  lane.flush();
  lane.push([&] { ++ran; });  // the I/O thread has not run the first hand-off yet
  lane.flush();
  CHECK(ioc.poll() == 1);
  CHECK(ran == 2);
  ioc.restart();
  lane.push([&] { ++ran; });
  lane.flush();
  CHECK(ioc.poll() == 1);
  CHECK(ran == 3);
}

TEST_CASE("handoff: pushed from another thread, run on the I/O thread") {
  boost::asio::io_context ioc(1);
  auto guard = boost::asio::make_work_guard(ioc);
  handoff lane(ioc);
  std::thread io([&] { ioc.run(); });
  std::vector<std::thread::id> where;
  std::atomic<int> ran{0};
  for (int batch = 0; batch < 50; ++batch) {
    for (int i = 0; i < 20; ++i) lane.push([&] {
        where.push_back(std::this_thread::get_id());  // only the I/O thread touches it
        ++ran;
      });
    lane.flush();
  }
  for (int i = 0; i < 500 && ran.load() < 1000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  guard.reset();
  io.join();
  CHECK(ran.load() == 1000);
  REQUIRE(where.size() == 1000);
  for (auto id : where) CHECK(id != std::this_thread::get_id());
}
