#include "transport/rate_limiter.hpp"

#include <doctest/doctest.h>

TEST_CASE("rate_limiter: burst, then the rate") {
  transport::rate_limiter r(10, 20, 1000);
  int ok = 0;
  for (int i = 0; i < 100; ++i) ok += r.allow(1, 0);
  CHECK(ok == 20);                 // the burst
  CHECK_FALSE(r.allow(1, 50));     // 0.5 token after 50 ms
  CHECK(r.allow(1, 100));          // one token after 100 ms
  CHECK(r.allow(2, 100));          // other keys are independent
  ok = 0;
  for (int t = 200; t <= 1200; t += 10) ok += r.allow(1, t);
  CHECK(ok >= 9);
  CHECK(ok <= 11);  // ~10 per second
}

TEST_CASE("rate_limiter: bounded keys; refilled buckets are dropped when space is needed") {
  transport::rate_limiter r(10, 2, 16);  // one key per shard
  CHECK(r.allow(0, 0));
  CHECK_FALSE(r.allow(16, 0));  // same shard, full, bucket 0 not yet refilled
  CHECK(r.allow(16, 1000));     // bucket 0 refilled: dropped, room for 16
  CHECK(r.size() == 1);
}

TEST_CASE("rate_limiter: rate 0 disables") {
  transport::rate_limiter r(0, 1, 1);
  for (int i = 0; i < 100; ++i) CHECK(r.allow(static_cast<std::uint64_t>(i), 0));
}
