// engine/call_lanes.hpp: one event per call on its way; the rest wait in order and are
// handed on one at a time.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/call_lanes.hpp"

using engine::call_lanes;

TEST_CASE("call_lanes: requests wait behind the holder and are handed on in arrival order") {
  call_lanes<int> lanes;
  int a = 1, b = 2, c = 3;
  CHECK_FALSE(lanes.wait("k", a));  // free: nothing to wait for
  CHECK(a == 1);                    // untouched
  lanes.take("k");
  CHECK(lanes.taken("k"));
  CHECK(lanes.wait("k", a));
  CHECK(lanes.wait("k", b));
  CHECK(lanes.wait("k", c));
  CHECK_FALSE(lanes.taken("other"));

  std::vector<int> seen;
  // The first one handed on takes the lane again (its event goes to the log): the others
  // keep waiting behind it.
  lanes.release("k", [&](int&& r) {
    seen.push_back(r);
    lanes.take("k");
  });
  CHECK(seen == std::vector<int>{1});
  CHECK(lanes.taken("k"));
  // The next two need no write (answered at once): both are handed on in one release.
  lanes.release("k", [&](int&& r) { seen.push_back(r); });
  CHECK(seen == std::vector<int>{1, 2, 3});
  CHECK_FALSE(lanes.taken("k"));
  CHECK(lanes.taken_count() == 0);
}

TEST_CASE("call_lanes: drain hands every waiting request over (shut-down) and frees every lane") {
  call_lanes<std::string> lanes;
  lanes.take("x");
  std::string r1 = "r1", r2 = "r2";
  CHECK(lanes.wait("x", r1));
  lanes.wait_behind("y", std::move(r2));  // y was free: queued anyway (behind a due expiry)
  std::vector<std::string> refused;
  lanes.drain([&](std::string& r) { refused.push_back(r); });
  CHECK(refused.size() == 2);
  CHECK(lanes.taken_count() == 0);
  lanes.take("z");
  lanes.drop("z");
  CHECK_FALSE(lanes.taken("z"));
}
