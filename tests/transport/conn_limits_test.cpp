#include "transport/detail/conn_limits.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using transport::detail::conn_limit_gauges;
using transport::detail::conn_limit_options;
using transport::detail::conn_limits;
using transport::detail::slot_guard;

TEST_CASE("conn_limits: per address and per subject, each bounded, entries erased at zero, gauges follow") {
  engine::gauge addresses, subjects;
  conn_limits l(conn_limit_options{100, 0, 3, 2}, conn_limit_gauges{&addresses, &subjects});
  std::vector<slot_guard> held;
  for (int i = 0; i < 3; ++i) held.push_back(*l.acquire_ip("192.0.2.1"));
  CHECK_FALSE(l.acquire_ip("192.0.2.1").has_value());  // the address is at its bound
  for (int i = 0; i < 2; ++i) held.push_back(*l.acquire_sub("alice"));
  CHECK_FALSE(l.acquire_sub("alice").has_value());
  CHECK(l.addresses() == 1);
  CHECK(l.subjects() == 1);
  CHECK(addresses.value() == 1);
  CHECK(subjects.value() == 1);
  held.clear();
  CHECK(l.addresses() == 0);
  CHECK(l.subjects() == 0);
  // Churn: many addresses and subjects come and go; nothing is left behind.
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 500; ++i) {
      const std::string n = std::to_string(round * 1000 + i);
      auto ip = l.acquire_ip("10.0." + n);
      auto sub = l.acquire_sub("sub-" + n);
      REQUIRE(ip);
      REQUIRE(sub);
      held.push_back(std::move(*ip));
      held.push_back(std::move(*sub));
    }
    CHECK(addresses.value() == 500);
    CHECK(subjects.value() == 500);
    held.clear();
    CHECK(addresses.value() == 0);
    CHECK(subjects.value() == 0);
  }
  CHECK(l.addresses() == 0);
  CHECK(l.subjects() == 0);
  // A refused acquire leaves no entry either.
  conn_limits none(conn_limit_options{100, 0, 0, 0}, conn_limit_gauges{&addresses, &subjects});
  CHECK(none.acquire_ip("192.0.2.9").has_value());  // 0: no limit, nothing counted
  CHECK(none.addresses() == 0);
}
