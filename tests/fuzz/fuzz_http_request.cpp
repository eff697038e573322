// The raw-socket HTTP/1.1 framing of transport::detail::request_reader on arbitrary
// bytes, as a connection would deliver them: request line, headers, Content-Length
// and chunked bodies, chunk extensions, trailers, pipelined requests, PROXY headers.
// The first input byte picks how the rest is cut into reads (1..64 bytes each, or
// all at once). Properties:
//  - feed() never consumes more than it was offered, and stops once complete or failed;
//  - the header block (and chunk extensions, and a pending trailer) never exceeds the
//    limit without a 431; a body never exceeds the body limit (413 otherwise);
//  - a complete request has no Transfer-Encoding but exactly "chunked", never both
//    Transfer-Encoding and Content-Length, and no field that came in a trailer (the
//    fields are exactly those of the header block, in order);
//  - a failure carries a 400, 413 or 431 reason and a message;
//  - cut into reads or offered at once, a request that completes completes the same
//    (method, target, body, fields);
//  - parse_proxy_v1 consumes at most the line it reports, within 107 bytes.
#include "transport/detail/request_reader.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"

namespace {

using transport::detail::request_reader;
using rc = schemas::reason_code;

constexpr transport::detail::framing_limits limits{1024, 4096};

struct outcome {
  request_reader::state st = request_reader::state::need_more;
  std::string method, target, body;
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t consumed = 0;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

// The header block's field names, in order, read straight from the bytes.
std::vector<std::string> header_names(std::string_view in) {
  std::vector<std::string> names;
  const auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) return names;
  std::string_view block = in.substr(0, end + 2);
  block.remove_prefix(block.find("\r\n") + 2);  // the request line
  while (!block.empty()) {
    const auto eol = block.find("\r\n");
    const auto line = block.substr(0, eol);
    // A line that starts with a blank continues the field before it (obs-fold, which
    // the parser joins with a space, RFC 9112 5.2).
    if (!(!line.empty() && (line.front() == ' ' || line.front() == '\t') && !names.empty()))
      names.emplace_back(line.substr(0, line.find(':')));
    block.remove_prefix(eol + 2);
  }
  return names;
}

outcome run(std::string_view in, std::size_t step) {
  request_reader r(limits);
  outcome o;
  std::string buffered;  // what a session keeps between reads: received, not consumed
  std::size_t offered = 0;
  while (r.status() == request_reader::state::need_more && offered < in.size()) {
    const std::size_t n = step == 0 ? in.size() : std::min(step, in.size() - offered);
    buffered.append(in.substr(offered, n));
    offered += n;
    const std::size_t used = r.feed(buffered);
    FUZZ_CHECK(used <= buffered.size());
    buffered.erase(0, used);
    o.consumed += used;
    FUZZ_CHECK(r.feed({}) == 0 || r.status() == request_reader::state::need_more);
  }
  o.st = r.status();
  if (o.st == request_reader::state::failed) {
    const auto code = r.error().code;
    FUZZ_CHECK(code == rc::invalid_field || code == rc::body_too_large || code == rc::headers_too_large);
    FUZZ_CHECK(!r.error().message.empty());
  }
  if (o.st == request_reader::state::complete) {
    const auto& req = r.request();
    o.method = std::string(req.method_string());
    o.target = std::string(req.target());
    o.body = req.body();
    FUZZ_CHECK(o.body.size() <= limits.max_body_bytes);
    std::size_t te = 0, codings = 0;  // across every Transfer-Encoding field: one list
    for (const auto& f : req) {
      o.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
      if (iequals(f.name_string(), "transfer-encoding")) {
        ++te;
        // The list's non-empty elements (RFC 9110 5.6.1: empty ones are allowed) are one: chunked.
        std::string_view list(f.value().data(), f.value().size());
        while (true) {
          const auto comma = list.find(',');
          std::string_view v = list.substr(0, comma);
          while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
          while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
          if (!v.empty()) {
            ++codings;
            FUZZ_CHECK(iequals(v, "chunked"));
          }
          if (comma == std::string_view::npos) break;
          list.remove_prefix(comma + 1);
        }
        FUZZ_CHECK(req.count(boost::beast::http::field::content_length) == 0);
      }
    }
    FUZZ_CHECK(te == 0 || codings == 1);
    // No trailer field: the fields are exactly the header block's (Beast keeps fields of
    // one name together, so compare them as sorted lists of lower-cased names).
    auto names = header_names(in);
    std::vector<std::string> got;
    for (const auto& f : o.fields) got.push_back(f.first);
    for (auto* list : {&names, &got}) {
      for (auto& n : *list)
        for (char& ch : n) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
      std::sort(list->begin(), list->end());
    }
    FUZZ_CHECK(got == names);
    FUZZ_CHECK(in.find("\r\n\r\n") + 4 <= limits.max_header_bytes + 4);
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = data[0] % 65;  // 0: all at once
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  const outcome cut = run(in, step == 0 ? 1 + data[0] % 7 : step);
  const outcome whole = run(in, 0);
  if (cut.st == request_reader::state::complete) {
    FUZZ_CHECK(whole.st == request_reader::state::complete);
    FUZZ_CHECK(whole.method == cut.method && whole.target == cut.target && whole.body == cut.body);
    FUZZ_CHECK(whole.fields == cut.fields);
    FUZZ_CHECK(whole.consumed == cut.consumed);
  }

  const auto p = transport::detail::parse_proxy_v1(in);
  FUZZ_CHECK(p.length <= in.size() && p.length <= 107);
  if (p.status == transport::detail::proxy_header::state::complete) {
    FUZZ_CHECK(p.length >= 8 && in.substr(p.length - 2, 2) == "\r\n");
    FUZZ_CHECK(p.source.size() <= 45);
  }
  return 0;
}
