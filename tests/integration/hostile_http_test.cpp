// Hostile clients, HTTP framing (contract §3a, issue 14 points 1 and 6), over the real
// binary and raw sockets: chunked trailers are bounded by the header limit and never
// become request headers; Transfer-Encoding other than exactly `chunked`, or with
// Content-Length, is 400 and the connection closes, so no body is ever run as a second
// request.
#include "tests/integration/raw_conn.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "tests/integration/api_fixture.hpp"

using namespace integration;

namespace {


double metric_of(std::uint16_t port, std::string_view name, const std::vector<std::string>& labels) {
  http_client c(port);
  const auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  return metric_sum(m.body, name, labels).value_or(0);
}

// Every response on a connection until the engine closes it (or `limit` passes).
std::vector<response> responses_until_close(raw_conn& c, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  std::vector<response> out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.read_response(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!r) break;
    out.push_back(std::move(*r));
  }
  return out;
}

std::string chunked_start_head(std::string_view extra_headers = "") {
  return "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked\r\n" +
         std::string(extra_headers) + "\r\n";
}

std::string chunk(std::string_view data) {
  std::ostringstream s;
  s << std::hex << data.size() << "\r\n" << data << "\r\n";
  return s.str();
}

}  // namespace

TEST_CASE("hostile http: a 256 MB chunked trailer is refused early (431) and the engine's memory does not grow") {
  engine_process eng;
  const std::string line = "X-Pad: " + std::string(1000, 'a') + "\r\n";
  {  // Warm-up: one over-limit trailer first, so the baseline already holds what serving
     // any request brings in (buffers, allocator caches; much more under ASan).
    raw_conn w(eng.port());
    std::string small = chunked_start_head() + "2\r\n{}\r\n0\r\n";
    for (int i = 0; i < 64; ++i) small += line;
    w.send_some(small, std::chrono::seconds(5));
    w.read_response(std::chrono::seconds(20));
  }
  const double refused_before = metric_of(eng.port(), "yna_http_requests_total", {"status=\"431\""});
  const long rss_before = rss_kib(eng.pid());
  REQUIRE(rss_before > 0);

  raw_conn c(eng.port());
  REQUIRE(c.send(chunked_start_head() + "2\r\n{}\r\n0\r\n"));  // no token: the trailer comes before any check
  std::string block;
  while (block.size() < (1u << 20)) block += line;
  constexpr std::size_t total = 256u << 20;
  std::size_t sent = 0;
  long rss_max = rss_before;
  while (sent < total) {
    const std::size_t n = c.send_some(block, std::chrono::seconds(5));
    sent += n;
    rss_max = std::max(rss_max, rss_kib(eng.pid()));
    if (n < block.size()) break;  // the engine stopped reading: it refused the request
  }
  rss_max = std::max(rss_max, rss_kib(eng.pid()));
  INFO("sent ", sent >> 20, " MiB of trailer; RSS ", rss_before, " KiB before, ", rss_max, " KiB at most");
  CHECK(sent < (32u << 20));                // refused after the header limit, not after 256 MB
  CHECK(rss_max - rss_before < 5 * 1024);   // under 5 MB of growth
  c.close();
  CHECK(eventually([&] {
    return metric_of(eng.port(), "yna_http_requests_total", {"status=\"431\""}) >= refused_before + 1;
  }));
  http_client h(eng.port());
  CHECK(h.get("/healthz").status == 200);  // still serving
}

TEST_CASE("hostile http: a last chunk and its trailer sent byte by byte do not abort the engine") {
  // Beast 1.81 asserted on this (found by tests/fuzz/fuzz_http_request.cpp).
  engine_process eng;
  raw_conn c(eng.port());
  const std::string bytes = chunked_start_head() + "0\r\nnu: \r\n555k\n\r\n";
  for (char b : bytes) {
    if (!c.send(std::string(1, b))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  c.close();
  http_client h(eng.port());
  CHECK(h.get("/healthz").status == 200);
  CHECK(eng.running());
  raw_conn d(eng.port());
  for (char b : chunked_start_head() + "2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n") REQUIRE(d.send(std::string(1, b)));
  auto r = d.read_response(std::chrono::seconds(20));
  REQUIRE(r.has_value());
  CHECK(r->status == 401);  // a whole request, refused for its missing token
}

TEST_CASE("hostile http: chunk extensions count toward the header limit too") {
  engine_process eng({"--max-header-bytes", "4096"});
  raw_conn c(eng.port());
  const std::string ext = "1;x=" + std::string(8192, 'e') + "\r\n{\r\n";
  c.send_some(chunked_start_head() + ext, std::chrono::seconds(5));
  auto r = c.read_response(std::chrono::seconds(20));
  REQUIRE(r.has_value());
  CHECK(r->status == 431);
  CHECK(is_error_info(r->body));
}

TEST_CASE("hostile http: a header sent as a chunked trailer is never a request header") {
  engine_process eng;
  const party mo = new_party(eng), mt = new_party(eng);
  const std::string body = start_body(mo.number, mt.number, sdp());

  SUBCASE("Authorization only in the trailer: 401, no call") {
    raw_conn c(eng.port());
    REQUIRE(c.send(chunked_start_head() + chunk(body) + "0\r\nAuthorization: Bearer " + mo.tok + "\r\n\r\n"));
    auto r = c.read_response(std::chrono::seconds(20));
    REQUIRE(r.has_value());
    CHECK(r->status == 401);
    CHECK(reason_code_of(r->body) == "UNAUTHORIZED");
    http_client h(eng.port());
    CHECK(metric_sum(h.get("/metrics").body, "yna_http_requests_total", {"endpoint=\"start\"", "status=\"200\""})
              .value_or(0) == 0);
  }
  SUBCASE("Authorization in the header and again in the trailer: only the header's counts") {
    const party stranger = new_party(eng);  // a valid token that does not own `from`
    raw_conn c(eng.port());
    REQUIRE(c.send(chunked_start_head("Authorization: Bearer " + stranger.tok + "\r\n") + chunk(body) +
                   "0\r\nAuthorization: Bearer " + mo.tok + "\r\n\r\n"));
    auto r = c.read_response(std::chrono::seconds(20));
    REQUIRE(r.has_value());
    CHECK(r->status == 403);
    CHECK(reason_code_of(r->body) == "FORBIDDEN");
  }
  SUBCASE("a small trailer is allowed and ignored: the header's token counts") {
    raw_conn c(eng.port());
    REQUIRE(c.send(chunked_start_head("Authorization: Bearer " + mo.tok + "\r\n") + chunk(body) +
                   "0\r\nX-Trailer: ok\r\nx-transaction-id: not-a-guid\r\n\r\n"));
    auto r = c.read_response(std::chrono::seconds(20));
    REQUIRE(r.has_value());
    CHECK(r->status == 200);  // the trailer's bad x-transaction-id was not read either
    CHECK(json_str(r->body, "/callId").has_value());
  }
}

TEST_CASE("hostile http: Transfer-Encoding smuggling is 400 and the connection closes") {
  engine_process eng;
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  struct variant {
    const char* name;
    std::string request;
  };
  const std::vector<variant> variants = {
      {"Transfer-Encoding: xchunked",
       "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: xchunked\r\n\r\n" + smuggled},
      {"Transfer-Encoding: chunked, identity with Content-Length: 0",
       "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n\r\n" +
           smuggled},
      {"Transfer-Encoding: chunked with Content-Length",
       "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" +
           smuggled},
      {"two Transfer-Encoding fields",
       "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n" + smuggled},
      {"gzip, chunked", "POST /start HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" +
                            smuggled},
      {"Transfer-Encoding on HTTP/1.0",
       "POST /start HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
  };
  for (const auto& v : variants) {
    CAPTURE(v.name);
    raw_conn c(eng.port());
    REQUIRE(c.send(v.request));
    const auto all = responses_until_close(c);
    REQUIRE(all.size() >= 1);
    CHECK(all.size() == 1);  // the body was never run as a second request
    CHECK(all[0].status == 400);
    CHECK(is_error_info(all[0].body));
    CHECK(all[0].header("connection") == std::optional<std::string>("close"));
  }
  // A well-framed chunked request still works (and keeps the connection).
  const party mo = new_party(eng), mt = new_party(eng);
  raw_conn c(eng.port());
  REQUIRE(c.send(chunked_start_head("Authorization: Bearer " + mo.tok + "\r\n") +
                 chunk(start_body(mo.number, mt.number, sdp())) + "0\r\n\r\n" + smuggled));
  auto first = c.read_response(std::chrono::seconds(20));
  REQUIRE(first.has_value());
  CHECK(first->status == 200);
  auto second = c.read_response(std::chrono::seconds(20));  // the pipelined GET, framed as its own request
  REQUIRE(second.has_value());
  CHECK(second->status == 200);
}
