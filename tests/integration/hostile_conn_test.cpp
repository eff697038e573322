// Hostile clients, connections and sockets (contract §3a, issue 14 points 3 and 5), over
// the real binary: a notification socket ends with its token; silent connections cannot
// take every slot (first-byte timeout, caps per address and per subject, reserved slots
// for health checks); a trusted proxy's PROXY header names the client.
#include "tests/integration/raw_conn.hpp"

#include <doctest/doctest.h>

#include "tests/integration/api_fixture.hpp"
#include "tests/integration/ws_client.hpp"

using namespace integration;
using namespace std::chrono_literals;

namespace {

double metric_of(std::uint16_t port, std::string_view name) {
  http_client c(port);
  const auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_sum(m.body, name, {}).value_or(0);
}

}  // namespace

TEST_CASE("hostile conn: a notification socket is closed (1008, token expired) when its token expires") {
  engine_process eng({"--token-leeway", "1"});
  const std::string me = fresh_msisdn(), caller = fresh_msisdn();
  const std::string tok = eng.token({me}, "dev-short", 3s);
  auto ws = ws_client::connect(eng.port(), "/notifications", bearer(tok));
  const auto opened = std::chrono::steady_clock::now();
  // Live before expiry: an invitation arrives.
  http_client c(eng.port());
  REQUIRE(c.post("/start", start_body(caller, me, sdp()), bearer(eng.token({caller}))).status == 200);
  auto inv = ws->next(10s);
  REQUIRE(inv.has_value());
  CHECK(frame_type(*inv) == "sessionInvitationNotification");
  // Then closed once exp + leeway has passed, with the reason said.
  CHECK(eventually([&] { return ws->closed(); }, 30s));
  const double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - opened).count();
  CHECK(after >= 2.0);  // not before exp + leeway (3 s + 1 s from minting, less the time to connect)
  CHECK(ws->close_code() == 1008);
  CHECK(ws->close_reason() == "token expired");
  // HTTP with the same token is 401 TOKEN_EXPIRED, and nothing more reaches the socket.
  CHECK(reason_code_of(c.get("/calls/" + unknown_call_id(), bearer(tok)).body) == "TOKEN_EXPIRED");
  CHECK(metric_of(eng.port(), "yna_ws_token_expired_closed_total") == 1);
}

TEST_CASE("hostile conn: silent connections cannot take /healthz away") {
  engine_process eng({"--max-connections", "20", "--max-connections-per-ip", "0", "--health-slots", "2",
                      "--first-byte-timeout", "60"});
  std::vector<std::unique_ptr<raw_conn>> silent;
  for (int i = 0; i < 20; ++i) silent.push_back(std::make_unique<raw_conn>(eng.port()));
  // Every slot is taken (the accept loop may still be counting the last ones).
  CHECK(eventually([&] {
    raw_conn probe(eng.port());
    return probe.send(get_request("/start")) && [&] {
      auto r = probe.read_response(5s);
      return r && r->status == 503;
    }();
  }));
  // /healthz and /readyz are answered in a reserved slot, each on a fresh connection.
  for (const char* path : {"/healthz", "/readyz", "/healthz"}) {
    CAPTURE(path);
    raw_conn h(eng.port());
    REQUIRE(h.send(get_request(path)));
    auto r = h.read_response(10s);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->header("connection") == std::optional<std::string>("close"));
  }
  // Anything else in a reserved slot: 503 with ErrorInfo and Retry-After.
  raw_conn other(eng.port());
  REQUIRE(other.send(get_request("/metrics")));
  auto r = other.read_response(10s);
  REQUIRE(r.has_value());
  CHECK(r->status == 503);
  CHECK(is_error_info(r->body));
  CHECK(r->header("retry-after").has_value());
  // Slots come back when the silent connections go.
  silent.clear();
  CHECK(eventually([&] { return metric_of(eng.port(), "yna_http_health_slot_connections_total") >= 4; }));
}

TEST_CASE("hostile conn: a connection that sends nothing is closed after --first-byte-timeout") {
  engine_process eng({"--first-byte-timeout", "0.5", "--idle-timeout", "60"});
  const double before = metric_of(eng.port(), "yna_http_timeouts_total");
  raw_conn c(eng.port());
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(closed(c.wait_close(20s)));
  CHECK(std::chrono::steady_clock::now() - t0 >= 400ms);
  CHECK(eventually([&] { return metric_of(eng.port(), "yna_http_timeouts_total") >= before + 1; }));
  // A keep-alive connection that already sent a request gets --idle-timeout instead.
  raw_conn k(eng.port());
  REQUIRE(k.send(get_request("/healthz")));
  REQUIRE(k.read_response(10s).has_value());
  CHECK(k.wait(1500ms) == raw_conn::outcome::timeout);  // still open after the first-byte timeout
}

TEST_CASE("hostile conn: connections are capped per client address") {
  engine_process eng({"--max-connections-per-ip", "5", "--first-byte-timeout", "60"});
  std::vector<std::unique_ptr<raw_conn>> mine;
  for (int i = 0; i < 5; ++i) mine.push_back(std::make_unique<raw_conn>(eng.port(), "127.0.0.1"));
  // The sixth from the same address is closed at once, without an answer.
  CHECK(eventually([&] {
    raw_conn sixth(eng.port(), "127.0.0.1");
    sixth.send(get_request("/healthz"));
    return closed(sixth.wait_close(5s)) && sixth.pending().empty();
  }));
  // Another client (another loopback address) is served.
  raw_conn other(eng.port(), "127.0.0.2");
  REQUIRE(other.send(get_request("/healthz")));
  auto r = other.read_response(10s);
  REQUIRE(r.has_value());
  CHECK(r->status == 200);
  // Slots return when connections close.
  mine.clear();
  CHECK(eventually([&] {
    raw_conn again(eng.port(), "127.0.0.1");
    if (!again.send(get_request("/healthz"))) return false;
    auto a = again.read_response(5s);
    return a && a->status == 200;
  }));
  CHECK(metric_of(eng.port(), "yna_http_connections_refused_per_ip_total") >= 1);
}

TEST_CASE("hostile conn: a trusted proxy's PROXY header names the client the cap counts") {
  engine_process eng({"--max-connections-per-ip", "2", "--trusted-proxy", "127.0.0.1", "--first-byte-timeout", "60"});
  auto via_proxy = [&](const std::string& client) {
    auto c = std::make_unique<raw_conn>(eng.port(), "127.0.0.1");
    c->send("PROXY TCP4 " + client + " 127.0.0.1 40000 8080\r\n");
    return c;
  };
  std::vector<std::unique_ptr<raw_conn>> held;
  for (int i = 0; i < 2; ++i) {  // two keep-alive connections of one client, each answered once
    held.push_back(via_proxy("203.0.113.7"));
    REQUIRE(held.back()->send(get_request("/healthz")));
    auto r = held.back()->read_response(10s);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  CHECK(eventually([&] {
    auto third = via_proxy("203.0.113.7");
    third->send(get_request("/healthz"));
    return closed(third->wait_close(5s)) && third->pending().empty();
  }));
  // Another client behind the same proxy, and the proxy's own many connections, are served.
  for (int i = 0; i < 4; ++i) {
    auto c = via_proxy("198.51.100." + std::to_string(i + 1));
    REQUIRE(c->send(get_request("/healthz")));
    auto r = c->read_response(10s);
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    held.push_back(std::move(c));
  }
  // A peer that is not trusted cannot name a client: its PROXY line is not HTTP.
  raw_conn untrusted(eng.port(), "127.0.0.2");
  REQUIRE(untrusted.send("PROXY TCP4 192.0.2.1 127.0.0.1 40000 8080\r\n" + get_request("/healthz")));
  auto r = untrusted.read_response(10s);
  REQUIRE(r.has_value());
  CHECK(r->status == 400);
}

TEST_CASE("hostile conn: notification sockets are capped per subject") {
  engine_process eng({"--max-sockets-per-sub", "3"});
  const std::string number = fresh_msisdn();  // one subject, several devices
  std::vector<std::unique_ptr<ws_client>> open;
  for (int i = 0; i < 3; ++i)
    open.push_back(ws_client::connect(eng.port(), "/notifications", bearer(eng.token({number}, "d" + std::to_string(i)))));
  CHECK(ws_client::refused_status(eng.port(), "/notifications", bearer(eng.token({number}, "d9"))) == 429);
  // Another subject is not affected.
  auto other = ws_client::connect(eng.port(), "/notifications", bearer(eng.token({fresh_msisdn()})));
  CHECK_FALSE(other->closed());
  CHECK(metric_of(eng.port(), "yna_ws_refused_per_sub_total") == 1);
  // The subject's number and the other's (sockets subscribe on the reactor thread: wait for it).
  CHECK(eventually([&] { return metric_of(eng.port(), "yna_ws_subscribed_numbers") == 2; }));
  // A closed socket gives its slot back.
  open.front()->close();
  open.erase(open.begin());
  CHECK(eventually([&] {
    return ws_client::refused_status(eng.port(), "/notifications", bearer(eng.token({number}, "d8"))) == 0;
  }));
}
