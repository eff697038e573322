// Webhooks without sockets (transport/webhook.hpp, contract §13): the URL, the body and
// signature formats, the retry schedule, the queue of one destination; and the outbound
// address rules (transport/detail/outbound.hpp).
#include "transport/webhook.hpp"

#include <doctest/doctest.h>

#include "transport/detail/outbound.hpp"

using namespace transport;
using namespace std::chrono_literals;

TEST_CASE("outbound URLs: what parses, how it is shown (no query, no default port), what is refused") {
  auto u = parse_outbound_url("HTTPS://Hooks.Example.COM:8443/a/b?token=secret");
  REQUIRE(u.has_value());
  CHECK(u->tls);
  CHECK(u->host == "hooks.example.com");
  CHECK(u->port == 8443);
  CHECK(u->target == "/a/b?token=secret");
  CHECK(u->shown() == "https://hooks.example.com:8443/a/b");

  u = parse_outbound_url("http://127.0.0.1");
  REQUIRE(u.has_value());
  CHECK_FALSE(u->tls);
  CHECK(u->port == 80);
  CHECK(u->target == "/");
  CHECK(u->shown() == "http://127.0.0.1/");

  u = parse_outbound_url("http://[::1]:9000?x=1");
  REQUIRE(u.has_value());
  CHECK(u->host == "::1");
  CHECK(u->port == 9000);
  CHECK(u->target == "/?x=1");
  CHECK(u->shown() == "http://[::1]:9000/");

  CHECK(parse_outbound_url("https://h/")->port == 443);

  for (const char* bad : {"ftp://h/", "h/path", "http://", "http:///x", "http://user:pw@h/", "http://h:0/",
                          "http://h:65536/", "http://h:8x/", "http://h/#frag", "http://h/a b", "http://::1/",
                          "http://[::1/", "http://h\x01/", "http://h%2f/"}) {
    INFO(bad);
    CHECK_FALSE(parse_outbound_url(bad).has_value());
  }
}

TEST_CASE("webhook body and signature: the exact formats of contract §13") {
  CHECK(webhook_id(7, "14250000001") == "7-14250000001");
  CHECK(webhook_body(7, "14250000001", R"({"sessionStatusNotification":{"status":"Ringing"}})") ==
        R"({"id":"7-14250000001","msisdn":"14250000001","notification":{"sessionStatusNotification":{"status":"Ringing"}}})");
  // Computed independently: python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec-test",
  //   b"1700000000." + b"{\"id\":\"7-14250000001\"}", hashlib.sha256).hexdigest())'
  CHECK(webhook_signature("whsec-test", 1700000000, R"({"id":"7-14250000001"})") ==
        "t=1700000000,v1=2d27e85c53fe653537921788dfb42acbbee0f68cf004f9f1bb0c91bda4d6545a");
  CHECK(webhook_signature("other", 1700000000, R"({"id":"7-14250000001"})") !=
        webhook_signature("whsec-test", 1700000000, R"({"id":"7-14250000001"})"));
}

TEST_CASE("retry delays: doubling from min with up to 50 % jitter, never above max") {
  const retry_policy p{1000ms, 300'000ms, 86'400'000ms};
  CHECK(retry_delay(p, 1, 0.0) == 1000ms);
  CHECK(retry_delay(p, 1, 0.999) < 1500ms);
  CHECK(retry_delay(p, 3, 0.0) == 4000ms);
  CHECK(retry_delay(p, 3, 0.5) == 5000ms);
  CHECK(retry_delay(p, 9, 0.0) == 256'000ms);
  CHECK(retry_delay(p, 9, 0.9) == 300'000ms);  // 256 s × 1.45 capped
  CHECK(retry_delay(p, 60, 0.3) == 300'000ms);
  CHECK(retry_delay(p, 1000, 0.0) == 300'000ms);
}

TEST_CASE("delivery queue: one lane per number in log order, lanes independent, the cursor behind the oldest open") {
  using clock = delivery_queue::clock;
  const auto t0 = clock::now();
  const retry_policy p{1000ms, 8000ms, 60'000ms};
  delivery_queue q(10);
  auto owed = [](std::vector<std::pair<std::string, std::string>> lane_bodies) {
    std::vector<planned_delivery> out;
    for (auto& [lane, body] : lane_bodies) out.push_back(planned_delivery{lane, "http://h/", body, lane + body});
    return out;
  };
  q.add(11, 1000, owed({{"A", "a11"}, {"B", "b11"}}));
  q.add(12, 1001, owed({{"A", "a12"}}));
  q.add(13, 1002, {});  // owes nothing
  q.add(14, 1003, owed({{"C", "c14"}}));
  q.add(12, 1001, owed({{"A", "again"}}));  // read twice: ignored
  CHECK(q.pending() == 4);
  CHECK(q.cursor() == 10);
  CHECK(q.read_upto() == 14);

  // The heads of A, B and C are due; A's second waits for its first.
  auto* a11 = q.take(t0);
  auto* b11 = q.take(t0);
  auto* c14 = q.take(t0);
  REQUIRE((a11 && b11 && c14));
  CHECK(a11->body == "a11");
  CHECK(a11->lane == "A");
  CHECK(a11->url == "http://h/");
  CHECK(a11->id == "Aa11");
  CHECK(b11->body == "b11");
  CHECK(c14->body == "c14");
  CHECK(q.take(t0) == nullptr);
  CHECK_FALSE(q.next_due().has_value());
  CHECK(q.in_flight() == 3);

  // C fails: retried after the delay; meanwhile A goes on.
  CHECK(q.failed(c14, t0, 2000, p, 0.0));
  CHECK(q.next_due() == t0 + 1000ms);
  q.delivered(a11);
  CHECK(q.cursor() == 10);  // B of 11 still open
  auto* a12 = q.take(t0);
  REQUIRE(a12);
  CHECK(a12->body == "a12");
  q.delivered(b11);
  CHECK(q.cursor() == 11);
  q.delivered(a12);
  CHECK(q.cursor() == 13);  // 13 owed nothing; 14 is open
  CHECK(q.oldest() == 1003);

  CHECK(q.take(t0 + 999ms) == nullptr);
  auto* again = q.take(t0 + 1000ms);
  REQUIRE(again == c14);
  CHECK(again->failures == 1);
  // Its event is older than max_age now: given up (dead), and the cursor passes it.
  CHECK_FALSE(q.failed(again, t0 + 1000ms, 1003 + 60'001, p, 0.0));
  CHECK(q.cursor() == 14);
  CHECK(q.pending() == 0);
  CHECK_FALSE(q.oldest().has_value());
}

TEST_CASE("outbound addresses: loopback, private, link-local and the like are special; listed exactly, allowed") {
  namespace ip = boost::asio::ip;
  for (const char* a : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1",
                        "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "ff02::1"}) {
    INFO(a);
    CHECK(transport::detail::is_special_address(ip::make_address(a)));
  }
  for (const char* a : {"8.8.8.8", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2001:4860:4860::8888",
                        "::ffff:8.8.8.8"}) {
    INFO(a);
    CHECK_FALSE(transport::detail::is_special_address(ip::make_address(a)));
  }
  transport::detail::outbound_policy p;
  p.allow = {"Hooks.Example.com", "127.0.0.1", "::1"};
  CHECK(p.host_allowed("hooks.example.com"));
  CHECK_FALSE(p.host_allowed("example.com"));
  CHECK_FALSE(p.host_allowed("evil.hooks.example.com"));
  CHECK(p.host_allowed("0:0::1"));  // the same address written otherwise
  CHECK(p.address_allowed(ip::make_address("127.0.0.1")));
  CHECK_FALSE(p.address_allowed(ip::make_address("127.0.0.2")));
  CHECK_FALSE(p.address_allowed(ip::make_address("10.0.0.1")));
  CHECK(p.address_allowed(ip::make_address("93.184.216.34")));
}
