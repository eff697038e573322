// The harness's HTTP client, raw-socket helper, JSON and Prometheus readers.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#include "tests/integration/harness.hpp"
#include "schemas/pop_token.hpp"

namespace integration {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

using parser_t = http::response_parser<http::string_body>;
using write_done_fn = std::function<void(beast::error_code)>;

struct exchange_result {
  bool write_done = false;
  beast::error_code write_ec;
  beast::error_code read_ec;
  bool got_bytes = false;
};

void connect(asio::io_context& ioc, beast::tcp_stream& s, std::uint16_t port, std::chrono::milliseconds timeout) {
  beast::error_code result = asio::error::would_block;
  s.expires_after(timeout);
  s.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
                  [&](beast::error_code ec) { result = ec; });
  ioc.restart();
  ioc.run();
  if (result) throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + result.message());
  s.socket().set_option(tcp::no_delay(true));
}

// Writes (through start_write) and reads one response at the same time: a server may
// answer (413, 401…) before it has read the whole request. When the read ends first,
// the unfinished write is cancelled.
exchange_result exchange(asio::io_context& ioc, beast::tcp_stream& s, beast::flat_buffer& buf, parser_t& parser,
                         std::chrono::milliseconds timeout, const std::function<void(write_done_fn)>& start_write) {
  exchange_result r;
  s.expires_after(timeout);
  start_write([&](beast::error_code ec) {
    r.write_done = true;
    r.write_ec = ec;
  });
  http::async_read(s, buf, parser, [&](beast::error_code ec, std::size_t) {
    r.read_ec = ec;
    if (!r.write_done) s.cancel();
  });
  ioc.restart();
  ioc.run();
  r.got_bytes = parser.got_some();
  return r;
}

response to_response(parser_t& parser) {
  auto& m = parser.get();
  response out;
  out.status = static_cast<int>(m.result_int());
  for (const auto& f : m) out.headers.emplace_back(lower(f.name_string()), std::string(f.value()));
  out.body = std::move(m.body());
  return out;
}

void limit(parser_t& p) {
  p.body_limit(std::uint64_t{64} << 20);
  p.header_limit(64 * 1024);
}

}  // namespace

std::optional<std::string> response::header(std::string_view name) const {
  const std::string n = lower(name);
  for (const auto& [k, v] : headers)
    if (k == n) return v;
  return std::nullopt;
}

struct http_client::impl {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{30000};

  void drop() {
    if (stream) {
      beast::error_code ec;
      stream->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream->close();
      stream.reset();
    }
    buffer.clear();
  }
};

http_client::http_client(std::uint16_t port, std::chrono::milliseconds timeout) : impl_(std::make_unique<impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

http_client::~http_client() { impl_->drop(); }

void http_client::set_port(std::uint16_t port) {
  impl_->drop();
  impl_->port = port;
}

void http_client::close() { impl_->drop(); }

response http_client::request(std::string_view method, std::string_view target, std::string_view body,
                              const header_list& headers) {
  http::request<http::string_body> req;
  const http::verb v = http::string_to_verb(method);
  if (v == http::verb::unknown)
    req.method_string(method);
  else
    req.method(v);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(impl_->port));
  req.set(http::field::user_agent, "yna-integration-test");
  std::optional<std::string> authorization;
  bool has_pop = false;
  for (const auto& [k, val] : headers) {
    if (beast::iequals(k, "X-Authorization")) {
      has_pop = true;
      if (val == no_pop) continue;
    }
    if (beast::iequals(k, "Authorization")) authorization = val;
    req.insert(k, val);
  }
  req.body() = std::string(body);
  const std::string_view path = target.substr(0, target.find('?'));
  const bool is_start = path.size() >= 6 && path.substr(path.size() - 6) == "/start";
  if (!body.empty() || v == http::verb::post || v == http::verb::put || v == http::verb::patch ||
      v == http::verb::delete_)
    req.content_length(body.size());
  req.keep_alive(true);

  std::string last_error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (authorization && !has_pop && !is_start)  // a fresh PoP per attempt: a retry is no replay
      req.set("X-Authorization",
              schemas::build_request_pop(test_device_key(), method, target, body, *authorization, now_seconds()));
    const bool reused = impl_->stream.has_value();
    if (!reused) {
      impl_->stream.emplace(impl_->ioc);
      connect(impl_->ioc, *impl_->stream, impl_->port, impl_->timeout);
    }
    parser_t parser;
    limit(parser);
    auto r = exchange(impl_->ioc, *impl_->stream, impl_->buffer, parser, impl_->timeout, [&](write_done_fn done) {
      http::async_write(*impl_->stream, req, [done](beast::error_code ec, std::size_t) { done(ec); });
    });
    if (!r.read_ec) {
      response out = to_response(parser);
      if (!parser.get().keep_alive() || !r.write_done || r.write_ec) impl_->drop();
      return out;
    }
    impl_->drop();
    last_error = "read: " + r.read_ec.message() + (r.write_ec ? "; write: " + r.write_ec.message() : "");
    // A keep-alive connection the server closed meanwhile: retry once on a new one.
    if (!(reused && !r.got_bytes && r.read_ec != beast::error::timeout)) break;
  }
  throw std::runtime_error(std::string(method) + " " + std::string(target) + " on 127.0.0.1:" +
                           std::to_string(impl_->port) + " failed: " + last_error);
}

response raw_request(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  connect(ioc, stream, port, timeout);
  beast::flat_buffer buf;
  parser_t parser;
  limit(parser);
  auto r = exchange(ioc, stream, buf, parser, timeout, [&](write_done_fn done) {
    asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                      [done](beast::error_code ec, std::size_t) { done(ec); });
  });
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (r.read_ec)
    throw std::runtime_error("raw request on 127.0.0.1:" + std::to_string(port) +
                             ": no response: " + r.read_ec.message() +
                             (r.write_ec ? "; write: " + r.write_ec.message() : ""));
  return to_response(parser);
}

std::vector<response> raw_requests(std::uint16_t port, std::string_view bytes, std::size_t n,
                                   std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  connect(ioc, stream, port, timeout);
  beast::error_code ec;
  stream.expires_after(timeout);
  asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                    [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.restart();
  ioc.run();
  if (ec) throw std::runtime_error("raw requests: write: " + ec.message());
  beast::flat_buffer buf;
  std::vector<response> out;
  while (out.size() < n) {
    parser_t parser;
    limit(parser);
    stream.expires_after(timeout);
    http::async_read(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.restart();
    ioc.run();
    if (ec)
      throw std::runtime_error("raw requests: response " + std::to_string(out.size() + 1) + " of " +
                               std::to_string(n) + ": " + ec.message());
    out.push_back(to_response(parser));
  }
  return out;
}

// ---------------------------------------------------------------------------- JSON

namespace {

// Calls fn(element) on the value at pointer; false when the body or pointer fails.
template <class Fn>
bool with_element(std::string_view body, std::string_view pointer, Fn&& fn) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root)) return false;
  simdjson::dom::element e = root;
  if (!pointer.empty() && root.at_pointer(pointer).get(e)) return false;
  fn(e);
  return true;
}

}  // namespace

std::optional<std::string> json_str(std::string_view body, std::string_view pointer) {
  std::optional<std::string> out;
  with_element(body, pointer, [&](simdjson::dom::element e) {
    std::string_view s;
    if (!e.get_string().get(s)) out = std::string(s);
  });
  return out;
}

std::optional<std::int64_t> json_int(std::string_view body, std::string_view pointer) {
  std::optional<std::int64_t> out;
  with_element(body, pointer, [&](simdjson::dom::element e) {
    std::int64_t v = 0;
    if (!e.get_int64().get(v)) out = v;
  });
  return out;
}

std::optional<double> json_num(std::string_view body, std::string_view pointer) {
  std::optional<double> out;
  with_element(body, pointer, [&](simdjson::dom::element e) {
    double v = 0;
    std::int64_t i = 0;
    std::uint64_t u = 0;
    if (!e.get_double().get(v))
      out = v;
    else if (!e.get_int64().get(i))
      out = static_cast<double>(i);
    else if (!e.get_uint64().get(u))
      out = static_cast<double>(u);
  });
  return out;
}

bool json_has(std::string_view body, std::string_view pointer) {
  return with_element(body, pointer, [](simdjson::dom::element) {});
}

bool json_is_object(std::string_view body) {
  bool obj = false;
  with_element(body, "", [&](simdjson::dom::element e) { obj = e.is_object(); });
  return obj;
}

std::optional<std::size_t> json_object_size(std::string_view body, std::string_view pointer) {
  std::optional<std::size_t> out;
  with_element(body, pointer, [&](simdjson::dom::element e) {
    simdjson::dom::object o;
    if (!e.get_object().get(o)) out = o.size();
  });
  return out;
}

std::string reason_code_of(std::string_view body) { return json_str(body, "/errors/0/reasonCode").value_or(""); }

bool is_error_info(std::string_view body) {
  bool ok = false;
  with_element(body, "", [&](simdjson::dom::element root) {
    simdjson::dom::array errors;
    if (root.at_key("errors").get_array().get(errors) || errors.size() == 0) return;
    for (simdjson::dom::element e : errors) {
      std::string_view s;
      for (const char* k : {"reasonCode", "systemMessage", "userMessage"})
        if (e.at_key(k).get_string().get(s)) return;
      if (e.at_key("reasonCode").get_string().get(s) || s.empty()) return;
    }
    ok = true;
  });
  return ok;
}

// ---------------------------------------------------------------------------- metrics

namespace {

// Splits "name{labels} value" into (series, value text); false for comments and blanks.
bool split_sample(std::string_view line, std::string_view& series, std::string_view& value) {
  if (line.empty() || line.front() == '#') return false;
  std::size_t end = line.find('{');
  if (end != std::string_view::npos && end < line.find(' ')) {
    end = line.find('}', end);
    if (end == std::string_view::npos) return false;
    ++end;
  } else {
    end = line.find(' ');
  }
  if (end == std::string_view::npos || end >= line.size()) return false;
  series = line.substr(0, end);
  value = line.substr(end);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  value = value.substr(0, value.find(' '));
  return !value.empty();
}

template <class Fn>
void for_each_sample(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view series, value;
    if (split_sample(line, series, value)) fn(series, std::strtod(std::string(value).c_str(), nullptr));
  }
}

}  // namespace

std::optional<double> metric_value(std::string_view text, std::string_view series) {
  std::optional<double> out;
  for_each_sample(text, [&](std::string_view s, double v) {
    if (s == series && !out) out = v;
  });
  return out;
}

std::optional<double> metric_sum(std::string_view text, std::string_view name,
                                 const std::vector<std::string>& labels) {
  std::optional<double> out;
  for_each_sample(text, [&](std::string_view s, double v) {
    const auto brace = s.find('{');
    if (s.substr(0, brace) != name) return;
    const std::string_view lbl = brace == std::string_view::npos ? std::string_view{} : s.substr(brace);
    for (const auto& l : labels)
      if (lbl.find(l) == std::string_view::npos) return;
    out = out.value_or(0) + v;
  });
  return out;
}

}  // namespace integration
