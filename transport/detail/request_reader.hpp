#pragma once
// HTTP/1.1 request framing (RFC 9112) with the engine's limits, without sockets: the
// session feeds it the bytes it read, it says when a request is complete or why it is
// refused. Private to transport (server.cpp, the HTTP fuzz target, tests).
//
// What it holds beyond Beast's parser (contract §3a):
// - the header limit counts every byte of the header block across reads, and the
//   chunked framing that is not body (chunk-size lines with extensions, the trailer
//   section) counts toward it too: 431 past --max-header-bytes, read early;
// - Transfer-Encoding other than exactly `chunked`, Transfer-Encoding with
//   Content-Length, or Transfer-Encoding on HTTP/1.0: 400, and the connection closes;
// - trailer fields are dropped from the request once it is complete: they are never
//   read as request headers (an Authorization in a trailer authenticates nothing).
// Not thread-safe: one per connection, on its I/O thread.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/reason_code.hpp"

namespace transport::detail {

struct framing_limits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
};

// Why a request was refused before it could be routed.
struct framing_error {
  schemas::reason_code code;  // headers_too_large (431), body_too_large (413), invalid_field (400)
  std::string message;
};

class request_reader {
 public:
  using request_type = boost::beast::http::request<boost::beast::http::string_body>;
  enum class state { need_more, complete, failed };

  explicit request_reader(framing_limits limits);
  // The parser keeps a pointer to a callback of ours: never moved.
  request_reader(const request_reader&) = delete;
  request_reader& operator=(const request_reader&) = delete;

  // Parses what it can of `in` (the bytes received and not yet consumed) and returns
  // how many were consumed: the caller drops them and calls again with more bytes
  // appended to the rest. A request may end inside `in`: the bytes after it belong to
  // the next request (pipelining) and are left unconsumed.
  std::size_t feed(std::string_view in);
  // Called when the peer closed the connection: a request in progress fails.
  void end_of_input();

  state status() const noexcept { return state_; }
  bool header_done() const noexcept { return parser_.is_header_done(); }
  // Complete, or failed after the header: what was parsed (transaction id of errors).
  const request_type& request() const { return parser_.get(); }
  request_type release() { return parser_.release(); }
  const framing_error& error() const { return *error_; }
  // True when nothing of a request has arrived yet (a clean end of a keep-alive
  // connection is not an error).
  bool idle() const noexcept { return header_bytes_ == 0 && pending_ == 0; }

 private:
  void fail(schemas::reason_code code, std::string message);
  bool check_framing();  // once the header is done; false: failed
  void drop_trailers();

  framing_limits limits_;
  boost::beast::http::request_parser<boost::beast::http::string_body> parser_;
  state state_ = state::need_more;
  std::optional<framing_error> error_;
  std::size_t header_bytes_ = 0;  // header block consumed so far
  std::size_t pending_ = 0;       // bytes offered but not consumed by the last feed()
  std::vector<const void*> header_fields_;  // the header block's fields (trailers are not)
  std::size_t extension_bytes_ = 0;  // chunk extensions parsed so far
  std::function<void(std::uint64_t, boost::core::string_view, boost::system::error_code&)> on_chunk_;
};

// PROXY protocol v1 (HAProxy's text header), sent first by a trusted proxy to name the
// client: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or "PROXY UNKNOWN...\r\n",
// at most 107 bytes.
struct proxy_header {
  enum class state { absent, need_more, complete, invalid };
  state status = state::absent;
  std::size_t length = 0;  // bytes of the header line (complete, invalid after a CRLF)
  std::string source;      // the client's address; empty for UNKNOWN
};
proxy_header parse_proxy_v1(std::string_view in);

}  // namespace transport::detail
