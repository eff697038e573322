// The engine's limits over the real binary, each with its flag, its default and its
// metric: header size (431), body size (413), connection count, slowloris (read
// timeout), idle keep-alive timeout, per-token rate limit (429), and TLS.
//
// Timing: the machine is shared and noisy. Deadlines here are generous upper bounds on
// things that must happen (a cut-off connection), never assertions that something is
// fast; lower bounds only check that a timeout did not fire before its flag allows.
#include "tests/integration/harness.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "schemas/pop_token.hpp"
#include "tests/integration/api_fixture.hpp"
#include "tests/integration/raw_conn.hpp"

using namespace integration;
namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------------ metrics

double metric_now(http_client& c, std::string_view name, const std::vector<std::string>& labels = {}) {
  const auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_sum(m.body, name, labels).value_or(0);
}

// A metric once it holds still for 100 ms (counters may be bumped just after a reply).
double metric_settled(http_client& c, std::string_view name, const std::vector<std::string>& labels = {}) {
  double last = metric_now(c, name, labels);
  int same = 0;
  const auto deadline = clock_type::now() + 3s;
  while (same < 5 && clock_type::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    const double v = metric_now(c, name, labels);
    same = v == last ? same + 1 : 0;
    last = v;
  }
  return last;
}

// The default of a flag as `yna-engine --help` prints it ("--flag TYPE=VALUE").
std::string help_default(const std::string& help, const std::string& flag) {
  const auto at = help.find(flag + " ");
  if (at == std::string::npos) return "<flag missing from --help>";
  const auto eq = help.find('=', at);
  const auto nl = help.find('\n', at);
  if (eq == std::string::npos || eq > nl) return "<no default shown>";
  const auto end = help.find_first_of(" \n", eq);
  return help.substr(eq + 1, end - eq - 1);
}

}  // namespace

TEST_CASE("limits: the defaults of the limit flags are the documented ones (--help)") {
  FILE* p = ::popen((engine_path().string() + " --help 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string help;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) help.append(buf, n);
  ::pclose(p);
  INFO(help);
  CHECK(help_default(help, "--max-header-bytes") == "16384");
  CHECK(help_default(help, "--max-body-bytes") == "65536");
  CHECK(help_default(help, "--max-connections") == "10000");
  CHECK(help_default(help, "--read-timeout") == "10");
  CHECK(help_default(help, "--idle-timeout") == "60");
  CHECK(help_default(help, "--rate-limit") == "50");
  CHECK(help_default(help, "--rate-burst") == "100");
  CHECK(help_default(help, "--pop-leeway") == "10");
  CHECK(help_default(help, "--pop-max-lifetime") == "300");
  // Hostile clients (contract 3a)
  CHECK(help_default(help, "--max-connections-per-ip") == "256");
  CHECK(help_default(help, "--max-sockets-per-sub") == "32");
  CHECK(help_default(help, "--health-slots") == "8");
  CHECK(help_default(help, "--first-byte-timeout") == "5");
  CHECK(help_default(help, "--max-token-lifetime") == "86400");
  CHECK(help_default(help, "--token-leeway") == "30");
  CHECK(help_default(help, "--rate-limit-sub") == "100");
  CHECK(help_default(help, "--rate-burst-sub") == "200");
  CHECK(help_default(help, "--pop-jti-per-key") == "16384");
}

TEST_CASE("limits: headers over --max-header-bytes → 431 HEADERS_TOO_LARGE; the 16 KiB default takes a 10 KiB header") {
  SUBCASE("--max-header-bytes 2048") {
    engine_process eng({"--max-header-bytes", "2048"});
    http_client c(eng.port());
    const party mo = new_party(eng);
    const party mt = new_party(eng);
    CHECK_200(c.get("/healthz", {{"X-Pad", std::string(1000, 'a')}}));
    CHECK_ERROR(c.get("/healthz", {{"X-Pad", std::string(3000, 'a')}}), 431, "HEADERS_TOO_LARGE");
    // Many small headers count as much as one big one.
    header_list many;
    for (int i = 0; i < 100; ++i) many.emplace_back("X-Pad-" + std::to_string(i), std::string(30, 'b'));
    CHECK_ERROR(c.get("/healthz", many), 431, "HEADERS_TOO_LARGE");
    // An authenticated call endpoint too, before anything else is looked at.
    CHECK_ERROR(c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"X-Pad", std::string(3000, 'a')}})),
                431, "HEADERS_TOO_LARGE");
    CHECK(metric_settled(c, "yna_http_requests_total", {"status=\"431\""}) >= 3);
    CHECK(metric_now(c, "yna_events_total") == 0);  // not stored
    CHECK(c.get("/healthz").status == 200);
  }
  SUBCASE("default (16384)") {
    auto& eng = shared_engine();
    http_client c(eng.port());
    const party mo = new_party(eng);
    const party mt = new_party(eng);
    CHECK_200(c.get("/healthz", {{"X-Pad", std::string(10 * 1024, 'a')}}));
    CHECK_200(c.post("/start", start_body(mo.number, mt.number, sdp()), mo.auth({{"X-Pad", std::string(10 * 1024, 'a')}})));
    CHECK_ERROR(c.get("/healthz", {{"X-Pad", std::string(20 * 1024, 'a')}}), 431, "HEADERS_TOO_LARGE");
  }
}

namespace {

// n header fields of 100 bytes each ("X-Pad-i: ppp…\r\n" is 100 to 103 bytes).
std::string pad_fields(int from, int n) {
  std::string s;
  for (int i = from; i < from + n; ++i) s += "X-Pad-" + std::to_string(i) + ": " + std::string(90, 'p') + "\r\n";
  return s;
}

}  // namespace

TEST_CASE("limits: a header block over --max-header-bytes is 431 also when it arrives in pieces") {
  engine_process eng({"--max-header-bytes", "2048"});
  raw_conn conn(eng.port());
  REQUIRE(conn.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + pad_fields(0, 18)));
  std::this_thread::sleep_for(200ms);
  REQUIRE(conn.send(pad_fields(18, 18)));
  std::this_thread::sleep_for(200ms);
  conn.send(pad_fields(36, 18) + "\r\n");
  const auto r = conn.read_response(20s);
  REQUIRE(r.has_value());
  INFO("GET /healthz with a ~5.6 KiB header block (54 fields, 3 pieces 200 ms apart), limit 2048: ", r->status, " ",
       r->body);
  CHECK_ERROR(*r, 431, "HEADERS_TOO_LARGE");
}

// Regression (was an engine bug, found by the hostile test): with the default --max-header-bytes 16384, a
// header block of many small fields is accepted up to about 20480 bytes (16384 + the
// engine's first 4096-byte read): 19494 bytes → 200, 20524 bytes → 431. One field that
// large is refused. Likely cause: Beast 1.81's parser applies header_limit to the bytes
// not yet consumed by one put(); complete fields consumed from the first read_some
// (server.cpp do_read, 4096 bytes) are not counted. Expected per README ("Largest
// request header block; larger gets 431"): 431 for any block over 16384 bytes.
TEST_CASE("limits: a header block of many small fields over the default 16384 bytes is 431") {
  auto& eng = shared_engine();
  raw_conn conn(eng.port());
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + pad_fields(0, 185) + "\r\n";
  REQUIRE(req.size() > 18 * 1024);
  REQUIRE(conn.send(req));
  const auto r = conn.read_response(20s);
  REQUIRE(r.has_value());
  INFO("GET /healthz with a ", req.size(), "-byte header block of 185 fields (one write): ", r->status, " ", r->body);
  CHECK_ERROR(*r, 431, "HEADERS_TOO_LARGE");
}

TEST_CASE("limits: a body over --max-body-bytes → 413 BODY_TOO_LARGE, counted, not stored") {
  engine_process eng({"--max-body-bytes", "1024"});
  http_client c(eng.port());
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  const std::string small = start_body(mo.number, mt.number, sdp());
  REQUIRE(small.size() < 1024);
  const std::string big = "{\"pad\":\"" + std::string(2000, 'x') + "\"," + small.substr(1);
  CHECK_ERROR(c.post("/start", big, mo.auth()), 413, "BODY_TOO_LARGE");
  CHECK(metric_settled(c, "yna_http_requests_total", {"status=\"413\""}) == 1);
  CHECK(metric_now(c, "yna_events_total") == 0);
  CHECK_200(c.post("/start", small, mo.auth()));
}

TEST_CASE("limits: --max-connections 4: the 5th connection is closed at once and counted; a freed slot serves again") {
  engine_process eng({"--max-connections", "4", "--health-slots", "0"});
  // Four keep-alive connections, each proven accepted by one answered request.
  std::vector<std::unique_ptr<raw_conn>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<raw_conn>(eng.port()));
    REQUIRE(held.back()->send(get_request("/healthz")));
    const auto r = held.back()->read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
  }
  auto metrics_via = [&](raw_conn& conn) {
    REQUIRE(conn.send(get_request("/metrics")));
    const auto r = conn.read_response();
    REQUIRE(r.has_value());
    REQUIRE(r->status == 200);
    return r->body;
  };
  const std::string m0 = metrics_via(*held[3]);
  const double refused0 = metric_value(m0, "yna_http_connections_refused_total").value_or(-1);
  CHECK(refused0 == 0);
  CHECK(metric_value(m0, "yna_http_connections") == std::optional<double>(4));

  // The 5th: the TCP connect succeeds (kernel backlog), then the engine closes it unserved.
  {
    raw_conn fifth(eng.port());
    const auto o = fifth.wait_close(10s);
    INFO("5th connection: ", describe(o), ", bytes: ", fifth.pending());
    CHECK(closed(o));
    CHECK(fifth.pending().empty());
  }
  {  // and one that sends a request first gets no answer either
    raw_conn sixth(eng.port());
    sixth.send(get_request("/healthz"));
    CHECK(!sixth.read_response(10s).has_value());
  }
  const std::string m1 = metrics_via(*held[3]);
  CHECK(metric_value(m1, "yna_http_connections_refused_total").value_or(0) >= refused0 + 2);
  CHECK(metric_value(m1, "yna_http_connections") == std::optional<double>(4));
  // The held connections still work.
  for (auto& h : held) {
    REQUIRE(h->send(get_request("/healthz")));
    const auto r = h->read_response();
    CHECK((r && r->status == 200));
  }

  // Free one slot: a new connection is served (once the engine saw the close).
  held[0]->close();
  const bool served = eventually([&] {
    try {
      http_client c(eng.port(), 5s);
      return c.get("/healthz").status == 200;
    } catch (const std::exception&) {
      return false;  // refused while the closed slot was not yet released
    }
  });
  CHECK(served);
}

TEST_CASE("limits: --read-timeout 0.5 cuts off slowloris clients (headers or body) while others are served") {
  engine_process eng({"--read-timeout", "0.5"});
  http_client metrics(eng.port());
  const double timeouts0 = metric_now(metrics, "yna_http_timeouts_total");

  // An idle connection that sends nothing: the read timeout starts at a request's first
  // byte, so this one is under the (60 s) idle timeout only.
  raw_conn idle(eng.port());
  const auto idle_since = clock_type::now();

  // A well-behaved client that keeps getting answers meanwhile.
  std::atomic<bool> stop{false};
  std::atomic<int> good_ok{0}, good_bad{0};
  std::string good_error;
  std::thread good([&] {
    try {
      http_client c(eng.port());
      while (!stop.load()) {
        (c.get("/healthz").status == 200 ? good_ok : good_bad).fetch_add(1);
        std::this_thread::sleep_for(50ms);
      }
    } catch (const std::exception& e) {
      good_error = e.what();
      good_bad.fetch_add(1);
    }
  });

  struct trickle_result {
    raw_conn::outcome how = raw_conn::outcome::timeout;
    double after_first_byte = 0;  // seconds from the first byte to the cut
    std::size_t sent = 0, total = 0;
    std::string got;
  };
  // Sends `prefix` at once (may be empty), then `slow` one byte every 100 ms.
  auto trickle = [&](std::string prefix, std::string slow) {
    trickle_result res;
    res.total = prefix.size() + slow.size();
    raw_conn conn(eng.port());
    const auto first = clock_type::now();
    if (!prefix.empty()) {
      if (!conn.send(prefix)) return res;
      res.sent = prefix.size();
    }
    for (char ch : slow) {
      if (!conn.send(std::string_view(&ch, 1))) {
        res.how = raw_conn::outcome::reset;
        break;
      }
      ++res.sent;
      const auto o = conn.wait(100ms);
      if (o != raw_conn::outcome::timeout) {
        res.how = o;
        if (o == raw_conn::outcome::data) res.how = conn.wait_close(5s);
        break;
      }
    }
    res.after_first_byte = seconds_since(first);
    res.got = conn.pending();
    return res;
  };
  trickle_result headers_res, body_res;
  std::thread t1([&] {
    headers_res = trickle("", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(120, 'a') + "\r\n\r\n");
  });
  std::thread t2([&] {
    body_res = trickle("POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 150\r\n\r\n",
                       std::string(150, ' '));
  });
  t1.join();
  t2.join();

  for (const auto* r : {&headers_res, &body_res}) {
    CAPTURE(r == &headers_res ? "slow headers" : "slow body");
    INFO("outcome ", describe(r->how), " after ", r->after_first_byte, " s, sent ", r->sent, " of ", r->total,
         " bytes, received: ", r->got);
    CHECK(closed(r->how));
    CHECK(r->sent < r->total);              // cut off before the request was complete
    CHECK(r->after_first_byte >= 0.45);     // not before --read-timeout
    CHECK(r->after_first_byte < 10.0);      // generous: the flag says 0.5 s
    CHECK(r->got.rfind("HTTP/1.1 2", 0) == std::string::npos);  // never answered as a request
  }

  // The silent connection is still open (at least 1 s idle by now) and gets served.
  while (seconds_since(idle_since) < 1.0) std::this_thread::sleep_for(50ms);
  REQUIRE(idle.send(get_request("/healthz")));
  const auto r = idle.read_response();
  CHECK((r && r->status == 200));

  stop = true;
  good.join();
  INFO("well-behaved client: ", good_ok.load(), " ok, ", good_bad.load(), " failed ", good_error);
  CHECK(good_bad.load() == 0);
  CHECK(good_ok.load() >= 3);
  CHECK(metric_settled(metrics, "yna_http_timeouts_total") >= timeouts0 + 2);
}

TEST_CASE("limits: --idle-timeout 0.5 closes idle keep-alive connections; an active one stays open") {
  engine_process eng({"--idle-timeout", "0.5"});
  http_client metrics(eng.port());
  const double timeouts0 = metric_now(metrics, "yna_http_timeouts_total");

  SUBCASE("idle after a request") {
    raw_conn conn(eng.port());
    // The engine's idle timer starts after it answered, so after this point.
    const auto since = clock_type::now();
    REQUIRE(conn.send(get_request("/healthz")));
    const auto r = conn.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(r->header("connection").value_or("") != "close");
    const auto o = conn.wait_close(10s);
    const double after = seconds_since(since);
    INFO(describe(o), " ", after, " s after the request");
    CHECK(closed(o));
    CHECK(after >= 0.45);
    CHECK(after < 10.0);
  }
  SUBCASE("idle from the start") {
    raw_conn conn(eng.port());
    const auto since = clock_type::now();
    const auto o = conn.wait_close(10s);
    INFO(describe(o), " after ", seconds_since(since), " s");
    CHECK(closed(o));
    CHECK(seconds_since(since) >= 0.45);
  }
  SUBCASE("a request every 100 ms keeps it open") {
    raw_conn conn(eng.port());
    for (int i = 0; i < 12; ++i) {
      CAPTURE(i);
      REQUIRE(conn.send(get_request("/healthz")));
      const auto r = conn.read_response();
      REQUIRE(r.has_value());  // the same connection answers every time
      CHECK(r->status == 200);
      std::this_thread::sleep_for(100ms);
    }
  }
  if (metric_now(metrics, "yna_http_timeouts_total") == timeouts0) std::this_thread::sleep_for(1s);
  // The metrics client's own connection may also have idled out meanwhile: counted too.
  CHECK(metric_settled(metrics, "yna_http_timeouts_total") >= timeouts0 + 1);
}

namespace {

std::string raw_http(std::string_view method, std::string_view target, const header_list& headers,
                     std::string_view body = {}) {
  std::string s = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) s += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "DELETE") s += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return s + "\r\n" + std::string(body);
}

header_list with_pop(const party& p, std::string_view method, std::string_view target, std::string_view body = {}) {
  const std::string auth = "Bearer " + p.tok;
  return {{"Authorization", auth},
          {"X-Authorization", schemas::build_request_pop(test_device_key(), method, target, body, auth, now_seconds())}};
}

bool is_429(const response& r) { return r.status == 429; }

}  // namespace

TEST_CASE("limits: --rate-limit 5 --rate-burst 5: 429 TOO_MANY_REQUESTS per token, Retry-After, recovery, not stored") {
  engine_process eng({"--rate-limit", "5", "--rate-burst", "5"});
  http_client c(eng.port());
  const party mo = new_party(eng, "mo-dev");
  const party t = new_party(eng, "t-dev");  // the token that goes over its rate
  // A call to t, started with mo's token (not t's bucket).
  const auto s = c.post("/start", start_body(mo.number, t.number, sdp()), mo.auth());
  REQUIRE_200(s);
  const std::string id = json_str(s.body, "/callId").value_or("");

  const double events0 = metric_settled(c, "yna_events_total");
  const double limited0 = metric_now(c, "yna_rate_limited_requests_total");
  const double unauth0 = metric_now(c, "yna_unauthenticated_requests_total");

  // One pipelined burst on t's token: 20 reads of an unknown call (cheap, not events),
  // 3 requests without PoP, then 5 /ringing (events when they get through).
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += raw_http("GET", "/calls/" + unknown_call_id(), with_pop(t, "GET", "/calls/" + unknown_call_id()));
  for (int i = 0; i < 3; ++i) burst += raw_http("POST", "/ringing/" + id, {{"Authorization", "Bearer " + t.tok}}, "{}");
  for (int i = 0; i < 5; ++i) burst += raw_http("POST", "/ringing/" + id, with_pop(t, "POST", "/ringing/" + id, "{}"), "{}");
  const auto sent = clock_type::now();
  const auto rs = raw_requests(eng.port(), burst, 28);
  const double took = seconds_since(sent);
  REQUIRE(rs.size() == 28);

  std::size_t first_429 = rs.size(), n429 = 0, stored = 0, passed = 0;
  for (std::size_t i = 0; i < rs.size(); ++i) {
    if (is_429(rs[i])) {
      ++n429;
      if (first_429 == rs.size()) first_429 = i;
    } else {
      ++passed;
      // Of the /ringing that got through, 200 and 400 are events; 401 (no PoP) is not.
      if (i >= 20 && rs[i].status != 401) ++stored;
    }
  }
  INFO("burst answered in ", took, " s; first 429 at #", first_429 + 1, "; ", n429, " × 429");
  // The burst allowance: the first 5 always pass.
  for (std::size_t i = 0; i < 5; ++i) {
    CAPTURE(i);
    CHECK_ERROR(rs[i], 404, "CALL_NOT_FOUND");
  }
  REQUIRE(first_429 < rs.size());
  CHECK(first_429 >= 5);
  // No more passed than the burst plus what refilled while the burst was answered.
  CHECK(static_cast<double>(passed) <= 5 + 5 * took + 1);
  if (took < 0.15) CHECK(first_429 == 5);  // nothing can have refilled: exactly the 6th
  const response& limited = rs[first_429];
  CHECK_ERROR(limited, 429, "TOO_MANY_REQUESTS");
  const std::string retry = limited.header("retry-after").value_or("");
  CHECK(!retry.empty());
  CHECK(std::all_of(retry.begin(), retry.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
  CHECK(std::atoi(retry.c_str()) >= 1);
  CHECK(is_guid(limited.header("x-transaction-id").value_or("")));
  // Over the limit, even a request without PoP is 429: the rate check comes first.
  for (std::size_t i = 20; i < 23; ++i)
    if (is_429(rs[i - 1]) && (i + 1 >= rs.size() || is_429(rs[i + 1]))) CHECK_ERROR(rs[i], 429, "TOO_MANY_REQUESTS");

  // Other tokens are unaffected: another party, and another token of the same party.
  const party u = new_party(eng, "u-dev");
  CHECK_ERROR(c.get("/calls/" + unknown_call_id(), u.auth()), 404, "CALL_NOT_FOUND");
  const party t2{t.number, eng.token({t.number}, "t-dev-2")};
  CHECK_200(c.get("/calls/" + id, t2.auth()));
  CHECK_200(c.get("/calls/" + id, mo.auth()));

  // 401s are not stored either.
  CHECK_ERROR(c.post("/ringing/" + id, "{}", u.auth({{"X-Authorization", "garbage"}})), 401, "POP_INVALID");
  CHECK_ERROR(c.post("/ringing/" + id, "{}", bearer("garbage")), 401, "UNAUTHORIZED");

  // After about a second the token works again.
  std::this_thread::sleep_for(1200ms);
  CHECK_ERROR(c.get("/calls/" + unknown_call_id(), t.auth()), 404, "CALL_NOT_FOUND");
  CHECK_EMPTY_OK(c.post("/ringing/" + id, "{}", t.auth()));
  ++stored;

  CHECK(metric_settled(c, "yna_rate_limited_requests_total") == limited0 + static_cast<double>(n429));
  std::size_t unauth_in_burst = 0;
  for (std::size_t i = 20; i < rs.size(); ++i)
    if (rs[i].status == 401) ++unauth_in_burst;
  CHECK(metric_now(c, "yna_unauthenticated_requests_total") == unauth0 + 2 + static_cast<double>(unauth_in_burst));
  CHECK(metric_settled(c, "yna_events_total") == events0 + static_cast<double>(stored));
  CHECK(metric_now(c, "yna_http_requests_total", {"status=\"429\""}) == static_cast<double>(n429));
}

// Regression (was an engine bug): the rate limiter's key was a hash of the Authorization header as sent
// (transport/api.cpp: std::hash of req.authorization), while the token verifier accepts
// the scheme in any case and any run of spaces or tabs before the token (RFC 7235). A
// client over its rate gets a fresh bucket for every spelling: "bearer T", "BEARER T",
// "Bearer  T"… Expected per README ("50 requests/s per access token"): 429 for all of
// them once the token is over its rate.
TEST_CASE("limits: the rate limit is per access token, however its Authorization header is spelled") {
  engine_process eng({"--rate-limit", "1", "--rate-burst", "3"});
  http_client c(eng.port());
  const party p = new_party(eng, "spell-dev");
  const std::string target = "/calls/" + unknown_call_id();
  const auto get_as = [&](const std::string& authorization) {
    return c.get(target, {{"Authorization", authorization},
                          {"X-Authorization", schemas::build_request_pop(test_device_key(), "GET", target, "",
                                                                         authorization, now_seconds())}});
  };
  std::size_t limited = 0;
  for (int i = 0; i < 6; ++i) limited += get_as("Bearer " + p.tok).status == 429 ? 1 : 0;
  REQUIRE(limited >= 2);  // the token is over its rate now (burst 3, 1/s)
  for (const std::string spelling : {"bearer ", "BEARER ", "Bearer  ", "Bearer\t", "bEaReR   "}) {
    const response r = get_as(spelling + p.tok);
    INFO("Authorization: '", spelling, "<the same token>' → ", r.status, " ", r.body);
    CHECK_ERROR(r, 429, "TOO_MANY_REQUESTS");
  }
}

TEST_CASE("limits: the default rate (50/s, burst 100) lets a burst of 100 through, then 429") {
  auto& eng = shared_engine();
  const party p = new_party(eng, "burst-dev");
  std::string burst;
  const std::string target = "/calls/" + unknown_call_id();
  for (int i = 0; i < 130; ++i) burst += raw_http("GET", target, with_pop(p, "GET", target));
  const auto sent = clock_type::now();
  const auto rs = raw_requests(eng.port(), burst, 130);
  const double took = seconds_since(sent);
  std::size_t passed = 0, first_429 = rs.size();
  for (std::size_t i = 0; i < rs.size(); ++i) {
    if (is_429(rs[i])) {
      if (first_429 == rs.size()) first_429 = i;
    } else {
      ++passed;
    }
  }
  INFO("burst of 130 answered in ", took, " s; first 429 at #", first_429 + 1, "; ", passed, " passed");
  CHECK(first_429 >= 100);
  CHECK(static_cast<double>(passed) <= 100 + 50 * took + 1);
  if (took < 2.0) CHECK(first_429 < rs.size());
}

// ------------------------------------------------------------------ TLS

namespace {

struct tls_answer {
  std::optional<response> res;
  std::string error;
};

// One request over TLS (Beast ssl_stream, certificate not verified: it is self-signed).
tls_answer tls_request(std::uint16_t port, std::string_view method, std::string_view target, std::string_view body,
                       const header_list& headers) {
  tls_answer out;
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> s(ioc, ctx);
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = std::string(body);
  if (!body.empty() || method == "POST") req.prepare_payload();
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  auto& tcp = beast::get_lowest_layer(s);
  tcp.expires_after(20s);
  tcp.async_connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), port), [&](beast::error_code ec) {
    if (ec) return void(out.error = "connect: " + ec.message());
    s.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec) {
      if (ec) return void(out.error = "handshake: " + ec.message());
      http::async_write(s, req, [&](beast::error_code ec, std::size_t) {
        if (ec) return void(out.error = "write: " + ec.message());
        http::async_read(s, buf, res, [&](beast::error_code ec, std::size_t) {
          if (ec) return void(out.error = "read: " + ec.message());
          response r;
          r.status = static_cast<int>(res.result_int());
          for (const auto& f : res) {
            std::string name(f.name_string());
            for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            r.headers.emplace_back(std::move(name), std::string(f.value()));
          }
          r.body = res.body();
          out.res = std::move(r);
        });
      });
    });
  });
  ioc.run();
  return out;
}

// A raw OpenSSL handshake limited to [min, max] protocol versions. "" on success, else why.
std::string openssl_handshake(std::uint16_t port, int min_version, int max_version, std::string* negotiated = nullptr) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return "SSL_CTX_new failed";
  // Let the client really offer old versions (OpenSSL 3 and Debian's config refuse
  // them by default), so a refusal can only come from the server.
  SSL_CTX_set_security_level(ctx, 0);
  SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_min_proto_version(ctx, min_version);
  SSL_CTX_set_max_proto_version(ctx, max_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  std::string why;
  try {
    raw_conn conn(port);
    timeval tv{10, 0};
    ::setsockopt(conn.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(conn.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, conn.fd());
    ERR_clear_error();
    const int rc = SSL_connect(ssl);
    if (rc != 1) {
      const unsigned long e = ERR_peek_last_error();
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      why = "SSL_connect: " + std::to_string(SSL_get_error(ssl, rc)) + " " + (e ? buf : "(no OpenSSL error)");
    } else if (negotiated) {
      *negotiated = SSL_get_version(ssl);
    }
    SSL_free(ssl);
  } catch (const std::exception& e) {
    why = e.what();
  }
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return why;
}

}  // namespace

TEST_CASE("limits: TLS with --tls-cert/--tls-key: https only, TLS 1.2+, plain HTTP gets no HTTP answer") {
  engine_process eng({"--tls-cert", "{root}/cert.pem", "--tls-key", "{root}/key.pem"}, false);
  const fs::path cert = eng.root() / "cert.pem", key = eng.root() / "key.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 -keyout '" +
                          key.string() + "' -out '" + cert.string() + "' > '" + (eng.root() / "openssl.log").string() +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  INFO(cmd, "\n", slurp(eng.root() / "openssl.log"));
  REQUIRE(rc == 0);
  eng.start();

  const std::string first_line = [&] {
    std::string out = slurp(eng.root() / "engine.1.stdout");
    return out.substr(0, out.find('\n'));
  }();
  CHECK(first_line.rfind("yna-engine listening on https://127.0.0.1:", 0) == 0);

  // Requests over TLS: health, an authenticated /start, a read with PoP.
  auto h = tls_request(eng.port(), "GET", "/healthz", "", {});
  INFO("TLS /healthz: ", h.error);
  REQUIRE(h.res.has_value());
  CHECK(h.res->status == 200);
  const party mo = new_party(eng);
  const party mt = new_party(eng);
  auto s = tls_request(eng.port(), "POST", "/start", start_body(mo.number, mt.number, sdp()),
                       {{"Authorization", "Bearer " + mo.tok}, {"Content-Type", "application/json"}});
  INFO("TLS /start: ", s.error);
  REQUIRE(s.res.has_value());
  CHECK_200(*s.res);
  const std::string id = json_str(s.res->body, "/callId").value_or("");
  auto g = tls_request(eng.port(), "GET", "/calls/" + id, "", with_pop(mo, "GET", "/calls/" + id));
  REQUIRE(g.res.has_value());
  CHECK_200(*g.res);
  CHECK(json_str(g.res->body, "/status") == std::optional<std::string>("Initial"));

  // TLS 1.2 and 1.3 are accepted; a client that speaks at most TLS 1.1 is refused.
  std::string version;
  CHECK(openssl_handshake(eng.port(), TLS1_2_VERSION, TLS1_2_VERSION, &version) == "");
  CHECK(version == "TLSv1.2");
  CHECK(openssl_handshake(eng.port(), TLS1_3_VERSION, TLS1_3_VERSION, &version) == "");
  CHECK(version == "TLSv1.3");
  const std::string old = openssl_handshake(eng.port(), TLS1_VERSION, TLS1_1_VERSION);
  INFO("TLS 1.0-1.1 client: ", old);
  CHECK(!old.empty());
  CHECK(old.find("no protocols available") == std::string::npos);  // the client did offer TLS 1.1

  // Forward-secret suites only (contract 3a), as testssl would probe them with s_client:
  // static-RSA key exchange (no forward secrecy) is refused, ECDHE is served.
  auto s_client = [&](const std::string& cipher) {
    // stdin empty: s_client sends nothing after the handshake (a stray newline would be a
    // malformed request, answered 400 and closed, and s_client would exit 1 on that).
    return run_command("timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(eng.port()) +
                       " -tls1_2 -cipher " + shell_quote(cipher) + " </dev/null 2>&1; echo \"exit=$?\"");
  };
  for (const char* weak : {"AES128-SHA", "AES256-GCM-SHA384", "AES128-SHA256"}) {
    CAPTURE(weak);
    const auto r = s_client(weak);
    CHECK(r.out.find("exit=0") == std::string::npos);
    CHECK(r.out.find("Cipher is " + std::string(weak)) == std::string::npos);
  }
  const auto strong = s_client("ECDHE-RSA-AES128-GCM-SHA256");
  INFO("s_client (tail): ", strong.out.substr(strong.out.size() > 600 ? strong.out.size() - 600 : 0));
  CHECK(strong.out.find("Cipher is ECDHE-RSA-AES128-GCM-SHA256") != std::string::npos);
  CHECK(strong.out.find("exit=0") != std::string::npos);
  CHECK(strong.out.find("ECDHE-RSA-AES128-GCM-SHA256") != std::string::npos);

  // Plain HTTP on the TLS port: no HTTP response, the connection is closed.
  {
    raw_conn plain(eng.port());
    REQUIRE(plain.send(get_request("/healthz")));
    const auto o = plain.wait_close(10s);
    INFO("plain HTTP: ", describe(o), ", received ", plain.pending().size(), " bytes");
    CHECK(closed(o));
    CHECK(plain.pending().rfind("HTTP/", 0) == std::string::npos);
  }
  // Still serving TLS.
  h = tls_request(eng.port(), "GET", "/healthz", "", {});
  REQUIRE(h.res.has_value());
  CHECK(h.res->status == 200);
}
