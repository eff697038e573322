#include "transport/detail/request_reader.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using transport::detail::request_reader;
using state = request_reader::state;
namespace http = boost::beast::http;

namespace {

constexpr transport::detail::framing_limits limits{1024, 4096};

// Feeds `in` in reads of `step` bytes (0: at once), as a session would.
state feed(request_reader& r, std::string_view in, std::size_t step = 0) {
  std::string buffered;
  for (std::size_t at = 0; at < in.size() && r.status() == state::need_more;) {
    const std::size_t n = step == 0 ? in.size() : std::min(step, in.size() - at);
    buffered.append(in.substr(at, n));
    at += n;
    buffered.erase(0, r.feed(buffered));
  }
  return r.status();
}

std::vector<std::string> values(const request_reader& r, std::string_view name) {
  std::vector<std::string> out;
  auto [b, e] = r.request().equal_range(name);
  for (auto it = b; it != e; ++it) out.emplace_back(it->value());
  return out;
}

}  // namespace

TEST_CASE("request_reader: trailer fields never become request fields, even with a header's name") {
  for (std::size_t step : {0, 1, 7}) {
    CAPTURE(step);
    request_reader r(limits);
    const std::string in =
        "POST /start HTTP/1.1\r\nAuthorization: Bearer A\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n{}\r\n0\r\nAuthorization: Bearer B\r\nX-Only-Trailer: t\r\nHost: evil\r\n\r\n";
    REQUIRE(feed(r, in, step) == state::complete);
    CHECK(values(r, "Authorization") == std::vector<std::string>{"Bearer A"});
    CHECK(values(r, "Host") == std::vector<std::string>{"h"});
    CHECK(values(r, "X-Only-Trailer").empty());
    CHECK(r.request().body() == "{}");
  }
}

TEST_CASE("request_reader: trailers and chunk extensions count toward the header limit (431)") {
  {
    request_reader r(limits);
    std::string in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
    for (int i = 0; i < 40; ++i) in += "X-Pad: " + std::string(40, 'p') + "\r\n";
    CHECK(feed(r, in, 64) == state::failed);
    CHECK(r.error().code == schemas::reason_code::headers_too_large);
  }
  {
    request_reader r(limits);
    const std::string in = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(2000, 'e') + "\r\nx\r\n";
    CHECK(feed(r, in) == state::failed);
    CHECK(r.error().code == schemas::reason_code::headers_too_large);
  }
  {  // within the limit: fine
    request_reader r(limits);
    CHECK(feed(r, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\n", 3) ==
          state::complete);
  }
}

TEST_CASE("request_reader: Transfer-Encoding must be exactly chunked, alone, on HTTP/1.1") {
  const char* bad[] = {
      "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
  };
  for (const char* in : bad) {
    CAPTURE(in);
    request_reader r(limits);
    CHECK(feed(r, in) == state::failed);
    CHECK(r.error().code == schemas::reason_code::invalid_field);
  }
  request_reader ok(limits);
  CHECK(feed(ok, "POST / HTTP/1.1\r\nTransfer-Encoding:  Chunked \r\n\r\n0\r\n\r\n") == state::complete);
}

TEST_CASE("request_reader: pipelined bytes stay for the next request; limits give 413 and 431") {
  request_reader r(limits);
  const std::string two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  const std::size_t used = r.feed(two);
  CHECK(r.status() == state::complete);
  CHECK(used == two.size() / 2);
  CHECK(r.request().target() == "/a");
  request_reader big(limits);
  CHECK(feed(big, "POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n") == state::failed);
  CHECK(big.error().code == schemas::reason_code::body_too_large);
  request_reader hdr(limits);
  CHECK(feed(hdr, "GET / HTTP/1.1\r\nX: " + std::string(2000, 'h'), 100) == state::failed);
  CHECK(hdr.error().code == schemas::reason_code::headers_too_large);
}

TEST_CASE("request_reader: PROXY protocol v1 header") {
  using st = transport::detail::proxy_header::state;
  auto p = transport::detail::parse_proxy_v1("PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\nGET");
  CHECK(p.status == st::complete);
  CHECK(p.source == "203.0.113.7");
  CHECK(p.length == 45);
  CHECK(transport::detail::parse_proxy_v1("PROX").status == st::need_more);
  CHECK(transport::detail::parse_proxy_v1("GET / HTTP/1.1\r\n").status == st::absent);
  CHECK(transport::detail::parse_proxy_v1("PROXY TCP4 ::1 ::1 1 2\r\n").status == st::invalid);
  CHECK(transport::detail::parse_proxy_v1("PROXY TCP6 ::1 ::1 1 2\r\n").source == "::1");
  CHECK(transport::detail::parse_proxy_v1("PROXY UNKNOWN\r\n").status == st::complete);
  CHECK(transport::detail::parse_proxy_v1("PROXY " + std::string(200, 'x')).status == st::invalid);
}

TEST_CASE("request_reader: a last chunk whose trailer arrives byte by byte (Beast 1.81 asserted on it)") {
  const std::string head = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const std::string tail : {"0\r\nnu: \r\n555k\n\r\n", "2\r\n{}\r\n0\r\nX: 1\r\n\r\n", "00\r\n\r\n",
                                 "0;e=1\r\nA: b\r\nC: d\r\n\r\n"}) {
    CAPTURE(tail);
    request_reader r(limits);
    const state st = feed(r, head + tail, 1);  // must not abort
    CHECK(st != state::failed);
    if (tail.find("555k\n") == std::string::npos) CHECK(st == state::complete);
  }
  request_reader n(limits);  // "0a" is a chunk of 10 bytes, not the last one
  CHECK(feed(n, head + "0a\r\n0123456789\r\n0\r\n\r\n", 1) == state::complete);
  CHECK(n.request().body() == "0123456789");
}
