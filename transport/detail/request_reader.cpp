#include "transport/detail/request_reader.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <iterator>

#include "transport/detail/ascii.hpp"

namespace transport::detail {

namespace http = boost::beast::http;
using rc = schemas::reason_code;

namespace {

// Beast 1.81 asserts (basic_parser.ipp, parse_chunk_header: n >= 5) when it is handed a
// last chunk again after it asked for more of its trailer section with fewer than 5
// bytes: a client sending "0\r\n" then a trailer byte by byte aborted the engine (found
// by fuzz_http_request). Beast needs the whole trailer section before it parses any of
// it anyway, so the last chunk is handed over only once it is complete; until then it
// is pending and counts toward the header limit.
bool last_chunk_incomplete(std::string_view rest) {
  if (rest.substr(0, 2) == "\r\n") rest.remove_prefix(2);  // the CRLF that ends the previous chunk's data
  std::size_t zeros = 0;
  while (zeros < rest.size() && rest[zeros] == '0') ++zeros;
  if (zeros == 0) return false;             // a chunk of some size, or not a chunk at all
  if (zeros == rest.size()) return true;    // "0…" so far: the size may go on, wait for it
  const char c = rest[zeros];
  const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  if (hex) return false;                    // e.g. "0a": not the last chunk
  return rest.find("\r\n\r\n") == std::string_view::npos;
}

}  // namespace

request_reader::request_reader(framing_limits limits) : limits_(limits) {
  parser_.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
  parser_.body_limit(limits_.max_body_bytes);
  parser_.eager(false);  // stop after the header: its framing is checked before any body byte
  on_chunk_ = [this](std::uint64_t, boost::core::string_view extensions, boost::system::error_code&) {
    extension_bytes_ += extensions.size();
  };
  parser_.on_chunk_header(on_chunk_);
}

void request_reader::fail(rc code, std::string message) {
  state_ = state::failed;
  error_ = framing_error{code, std::move(message)};
}

std::size_t request_reader::feed(std::string_view in) {
  if (state_ != state::need_more) return 0;
  std::size_t used = 0;
  while (used < in.size()) {  // never an empty buffer: Beast would do arithmetic on its null pointer
    const bool had_header = parser_.is_header_done();
    if (had_header && parser_.chunked() && last_chunk_incomplete(in.substr(used))) break;
    boost::beast::error_code ec;
    const std::size_t n = parser_.put(boost::asio::const_buffer(in.data() + used, in.size() - used), ec);
    used += n;
    if (!had_header) header_bytes_ += n;
    pending_ = in.size() - used;
    if (ec == http::error::need_more) break;
    if (ec == http::error::body_limit) {
      fail(rc::body_too_large, "the body is larger than the limit (--max-body-bytes)");
      return used;
    }
    if (ec == http::error::header_limit) {
      fail(rc::headers_too_large, "the headers are larger than the limit (--max-header-bytes)");
      return used;
    }
    if (ec) {
      fail(rc::invalid_field, "malformed HTTP request: " + ec.message());
      return used;
    }
    if (header_bytes_ + extension_bytes_ > limits_.max_header_bytes) break;  // refused below
    if (!had_header && parser_.is_header_done()) {
      if (!check_framing()) return used;
      for (const auto& f : parser_.get()) header_fields_.push_back(&f);
      parser_.eager(true);
    }
    if (parser_.is_done()) {
      drop_trailers();
      state_ = state::complete;
      return used;
    }
    if (n == 0) break;
  }
  pending_ = in.size() - used;
  // What is still unconsumed is header (not yet complete) or chunked framing: a
  // chunk-size line with its extensions, or the last chunk and its trailer section,
  // which Beast only parses once it has all of it. Both count toward the header limit.
  if (header_bytes_ + extension_bytes_ + pending_ > limits_.max_header_bytes) {
    fail(rc::headers_too_large, parser_.is_header_done()
                                    ? "the chunked framing (chunk extensions or trailers) with the headers is larger "
                                      "than the limit (--max-header-bytes)"
                                    : "the headers are larger than the limit (--max-header-bytes)");
  }
  return used;
}

void request_reader::end_of_input() {
  if (state_ == state::need_more) fail(rc::invalid_field, "the connection closed in the middle of a request");
}

bool request_reader::check_framing() {
  const auto& req = parser_.get();
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return true;
  if (req.version() < 11) {
    fail(rc::invalid_field, "malformed HTTP request: Transfer-Encoding in an HTTP/1.0 request");
    return false;
  }
  if (req.count(http::field::content_length) > 0) {
    fail(rc::invalid_field, "malformed HTTP request: both Transfer-Encoding and Content-Length");
    return false;
  }
  // Across every Transfer-Encoding field, the codings must be exactly one: chunked.
  std::size_t codings = 0;
  bool only_chunked = true;
  for (auto it = first; it != last; ++it) {
    std::string_view list(it->value().data(), it->value().size());
    while (true) {
      const auto comma = list.find(',');
      const auto item = trim_ows(list.substr(0, comma));
      if (!item.empty()) {
        ++codings;
        only_chunked = only_chunked && iequals(item, "chunked");
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (codings != 1 || !only_chunked || !parser_.chunked()) {
    fail(rc::invalid_field, "malformed HTTP request: Transfer-Encoding must be exactly 'chunked'");
    return false;
  }
  return true;
}

// Beast files a trailer field next to a header field of the same name, not at the end:
// the header block's fields are known by their node (stable for the message's life).
void request_reader::drop_trailers() {
  auto& fields = parser_.get();
  if (static_cast<std::size_t>(std::distance(fields.begin(), fields.end())) == header_fields_.size()) return;
  for (auto it = fields.begin(); it != fields.end();) {
    const void* node = &*it;
    if (std::find(header_fields_.begin(), header_fields_.end(), node) == header_fields_.end())
      it = fields.erase(it);
    else
      ++it;
  }
}

proxy_header parse_proxy_v1(std::string_view in) {
  constexpr std::string_view sig = "PROXY ";
  constexpr std::size_t max_line = 107;  // the specification's longest v1 line, CRLF included
  proxy_header out;
  if (in.size() < sig.size()) {
    out.status = in == sig.substr(0, in.size()) ? proxy_header::state::need_more : proxy_header::state::absent;
    return out;
  }
  if (in.substr(0, sig.size()) != sig) return out;  // absent
  const auto eol = in.substr(0, max_line).find("\r\n");
  if (eol == std::string_view::npos) {
    out.status = in.size() >= max_line ? proxy_header::state::invalid : proxy_header::state::need_more;
    return out;
  }
  out.length = eol + 2;
  out.status = proxy_header::state::invalid;
  std::string_view words[6];
  std::size_t count = 0;
  for (std::string_view rest = in.substr(sig.size(), eol - sig.size()); !rest.empty() && count < 6;) {
    const auto sp = rest.find(' ');
    words[count++] = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  if (count >= 1 && words[0] == "UNKNOWN") {  // the proxy's own connection: its address stands
    out.status = proxy_header::state::complete;
    return out;
  }
  if (count != 5 || (words[0] != "TCP4" && words[0] != "TCP6")) return out;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(words[1]), ec);
  if (ec || addr.is_v4() != (words[0] == "TCP4")) return out;
  out.source = addr.to_string();
  out.status = proxy_header::state::complete;
  return out;
}

}  // namespace transport::detail
