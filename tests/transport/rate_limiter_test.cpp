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

TEST_CASE("rate_limiter: a full table forgets the least recently used bucket, never refuses a newcomer") {
  transport::rate_limiter r(10, 2, 32);  // two keys per shard
  CHECK(r.allow(0, 0));
  CHECK(r.allow(16, 0));   // same shard
  CHECK(r.allow(0, 0));    // key 0: burst used up, most recently used
  CHECK(r.allow(32, 0));   // a newcomer in a full shard: admitted, key 16 (least recent) forgotten
  CHECK(r.size() == 2);
  CHECK(r.evicted() == 1);
  CHECK_FALSE(r.allow(0, 0));  // key 0 still remembered: its empty bucket holds
  CHECK(r.allow(16, 0));       // key 16 was forgotten: a fresh bucket (key 32 goes now)
  CHECK(r.evicted() == 2);
  CHECK_FALSE(r.would_allow(0, 0));
  CHECK(r.would_allow(0, 100));  // one token back after 100 ms
}

TEST_CASE("rate_limiter: rate 0 disables") {
  transport::rate_limiter r(0, 1, 1);
  for (int i = 0; i < 100; ++i) CHECK(r.allow(static_cast<std::uint64_t>(i), 0));
}

TEST_CASE("rate_limiter: buckets that have refilled are forgotten: the gauge returns to 0") {
  transport::rate_limiter r(10, 20, 1'000'000);  // a token comes back in 100 ms
  for (std::uint64_t k = 0; k < 1000; ++k) CHECK(r.allow(k, 0));
  CHECK(r.size() == 1000);
  r.forget_idle(50);  // not yet refilled: each used one token
  CHECK(r.size() == 1000);
  // New traffic forgets refilled buckets as it goes (two per request), whatever the keys.
  for (std::uint64_t k = 1000; k < 1100; ++k) CHECK(r.allow(k, 2100));
  CHECK(r.size() < 1000);
  CHECK(r.evicted() == 0);  // nothing was forgotten for room
  r.forget_idle(5000);
  CHECK(r.size() == 0);
  // A key forgotten when idle starts again with a full burst: nothing is lost.
  int ok = 0;
  for (int i = 0; i < 30; ++i) ok += r.allow(7, 5000);
  CHECK(ok == 20);
  CHECK(r.size() == 1);
}
