#include "tools/loadgen/histogram.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "tools/loadgen/flow.hpp"

TEST_CASE("loadgen histogram: buckets tile the range and hold their values") {
  using loadgen::histogram;
  for (std::size_t i = 0; i + 1 < histogram::bucket_count; ++i) {
    CHECK(histogram::highest(i) + 1 == histogram::lowest(i + 1));
    REQUIRE(histogram::index_of(histogram::lowest(i)) == i);
    REQUIRE(histogram::index_of(histogram::highest(i)) == i);
  }
  CHECK(histogram::index_of(~std::uint64_t{0}) == histogram::bucket_count - 1);
}

TEST_CASE("loadgen histogram: quantiles within 1/64 of the exact ones") {
  loadgen::histogram h;
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(13.0, 1.0);  // around 0.5 ms in ns
  std::vector<std::uint64_t> v;
  for (int i = 0; i < 100000; ++i) {
    v.push_back(static_cast<std::uint64_t>(d(rng)));
    h.record_ns(v.back());
  }
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]);
    CAPTURE(q);
    CHECK(static_cast<double>(h.quantile_ns(q)) == doctest::Approx(exact).epsilon(1.0 / 64));
  }
  CHECK(h.quantile_ns(1.0) == v.back());
  CHECK(h.count() == v.size());
  CHECK(h.max_ns() == v.back());
}

TEST_CASE("loadgen flow mix: parse, pick by weight, refuse nonsense") {
  std::string err;
  auto m = loadgen::flow_mix::parse("full:3,busy:1", err);
  REQUIRE(m);
  CHECK(m->describe() == "full:3,busy:1");
  CHECK(m->mean_requests() == doctest::Approx((3 * 11 + 2) / 4.0));
  std::mt19937_64 rng(1);
  int full = 0;
  for (int i = 0; i < 4000; ++i) full += m->pick(rng) == loadgen::flow_kind::full;
  CHECK(full == doctest::Approx(3000).epsilon(0.05));
  CHECK_FALSE(loadgen::flow_mix::parse("full:0", err));
  CHECK_FALSE(loadgen::flow_mix::parse("fast", err));
  CHECK(err.find("unknown flow") != std::string::npos);
  CHECK_FALSE(loadgen::flow_mix::parse("", err));
  CHECK(loadgen::flow_mix::parse("start", err)->only(loadgen::flow_kind::start_only));
}
