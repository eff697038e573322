#include "transport/detail/outbound.hpp"

#include <array>
#include <optional>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>

#include "transport/detail/ascii.hpp"

namespace transport::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto nothrow = net::as_tuple(net::use_awaitable);

namespace {

bool special_v4(const net::ip::address_v4& a) {
  const auto b = a.to_bytes();
  if (b[0] == 0 || b[0] == 10 || b[0] == 127) return true;     // this network, private, loopback
  if (b[0] == 169 && b[1] == 254) return true;                  // link-local
  if (b[0] == 172 && (b[1] & 0xf0) == 16) return true;          // private
  if (b[0] == 192 && b[1] == 168) return true;                  // private
  if (b[0] == 100 && (b[1] & 0xc0) == 64) return true;          // shared (carrier-grade NAT)
  if (b[0] == 192 && b[1] == 0 && b[2] == 0) return true;       // IETF protocol assignments
  if (b[0] == 198 && (b[1] & 0xfe) == 18) return true;          // benchmarking
  if (b[0] >= 224) return true;                                 // multicast, reserved, broadcast
  return false;
}

}  // namespace

bool is_special_address(const net::ip::address& a) {
  if (a.is_v4()) return special_v4(a.to_v4());
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return special_v4(net::ip::make_address_v4(net::ip::v4_mapped, v6));
  if (v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_site_local() || v6.is_multicast())
    return true;
  const auto b = v6.to_bytes();
  if ((b[0] & 0xfe) == 0xfc) return true;  // unique local fc00::/7
  // 64:ff9b::/96 (NAT64) and ::/96 (IPv4-compatible) carry an IPv4 address: judge that.
  static constexpr std::array<unsigned char, 12> nat64 = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static constexpr std::array<unsigned char, 12> compat = {};
  if (std::equal(nat64.begin(), nat64.end(), b.begin()) || std::equal(compat.begin(), compat.end(), b.begin()))
    return special_v4(net::ip::address_v4({b[12], b[13], b[14], b[15]}));
  return false;
}

bool outbound_policy::host_allowed(std::string_view host) const {
  boost::system::error_code ec;
  const auto as_address = net::ip::make_address(std::string(host), ec);
  for (const auto& a : allow) {
    if (iequals(a, host)) return true;
    if (!ec) {
      boost::system::error_code ec2;
      const auto listed = net::ip::make_address(a, ec2);
      if (!ec2 && listed == as_address) return true;
    }
  }
  return false;
}

bool outbound_policy::address_allowed(const net::ip::address& a) const {
  if (!is_special_address(a)) return true;
  for (const auto& entry : allow) {
    boost::system::error_code ec;
    const auto listed = net::ip::make_address(entry, ec);
    if (!ec && listed == a) return true;
  }
  return false;
}

std::shared_ptr<net::ssl::context> make_client_tls(const std::string& ca_file) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_default_verify_paths();
  if (!ca_file.empty()) {
    boost::system::error_code ec;
    ctx->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error("--outbound-ca " + ca_file + ": " + ec.message());
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  return ctx;
}

struct outbound_connection::impl {
  outbound_url url;
  const outbound_policy& policy;
  std::shared_ptr<net::ssl::context> tls;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::string host_header;

  impl(const outbound_url& u, const outbound_policy& p, std::shared_ptr<net::ssl::context> t)
      : url(u), policy(p), tls(std::move(t)) {
    host_header = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    if (url.port != (url.tls ? 443 : 80)) host_header += ":" + std::to_string(url.port);
  }

  bool connected() const { return plain || secure; }

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // From outside the coroutine: closes the socket, which fails what is in flight; the
  // stream objects stay until the coroutine, seeing the failure, calls close().
  void abort() {
    boost::system::error_code ignored;
    if (connected()) lowest().socket().close(ignored);
  }

  void close() {
    boost::system::error_code ignored;
    if (plain) plain->socket().close(ignored);
    if (secure) beast::get_lowest_layer(*secure).socket().close(ignored);
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  net::awaitable<std::string> connect(std::chrono::milliseconds timeout) {
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(url.host, std::to_string(url.port), nothrow);
    if (rec) co_return "resolving " + url.host + ": " + rec.message();
    std::vector<tcp::endpoint> allowed;
    for (const auto& r : results)
      if (policy.address_allowed(r.endpoint().address())) allowed.push_back(r.endpoint());
    if (allowed.empty())
      co_return url.host + " has no address that may be connected to (loopback, private and link-local "
                           "addresses need to be listed exactly in --outbound-allow)";
    beast::tcp_stream s(ex);
    s.expires_after(timeout);
    auto [cec, ep] = co_await s.async_connect(allowed, nothrow);
    if (cec) co_return "connecting to " + url.host + ": " + cec.message();
    boost::system::error_code rec2;
    const auto remote = s.socket().remote_endpoint(rec2);
    if (rec2 || !policy.address_allowed(remote.address()))
      co_return "connected to " + (rec2 ? std::string("an unknown address") : remote.address().to_string()) +
          ", which is not allowed";
    if (!url.tls) {
      plain.emplace(std::move(s));
      co_return std::string();
    }
    secure.emplace(std::move(s), *tls);
    boost::system::error_code ip_ec;
    net::ip::make_address(url.host, ip_ec);
    if (ip_ec)  // SNI takes names only
      SSL_set_tlsext_host_name(secure->native_handle(), url.host.c_str());
    secure->set_verify_callback(net::ssl::host_name_verification(url.host));
    beast::get_lowest_layer(*secure).expires_after(timeout);
    auto [hec] = co_await secure->async_handshake(net::ssl::stream_base::client, nothrow);
    if (hec) {
      close();
      co_return "TLS with " + url.host + ": " + hec.message();
    }
    co_return std::string();
  }

  template <class Stream>
  net::awaitable<schemas::result<outbound_response, std::string>> exchange(Stream& stream,
                                                                          http::request<http::string_body>& req) {
    auto [wec, written] = co_await http::async_write(stream, req, nothrow);
    if (wec) co_return schemas::failure{"sending to " + url.host + ": " + wec.message()};
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    parser.header_limit(16 * 1024);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (rec) co_return schemas::failure{"reading the answer of " + url.host + ": " + rec.message()};
    auto& res = parser.get();
    if (!res.keep_alive()) close();
    outbound_response out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    co_return out;
  }
};

outbound_connection::outbound_connection(const outbound_url& url, const outbound_policy& policy,
                                         std::shared_ptr<net::ssl::context> tls)
    : impl_(std::make_unique<impl>(url, policy, std::move(tls))) {}

outbound_connection::~outbound_connection() = default;

void outbound_connection::close() { impl_->abort(); }

net::awaitable<schemas::result<outbound_response, std::string>> outbound_connection::post(
    const outbound_headers& headers, const std::string& body, std::chrono::milliseconds timeout) {
  co_return co_await send(true, headers, body, timeout);
}

net::awaitable<schemas::result<outbound_response, std::string>> outbound_connection::get(
    const outbound_headers& headers, std::chrono::milliseconds timeout) {
  co_return co_await send(false, headers, std::string(), timeout);
}

net::awaitable<schemas::result<outbound_response, std::string>> outbound_connection::send(
    bool post, const outbound_headers& headers, const std::string& body, std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(ms, std::chrono::milliseconds(1));
  };
  http::request<http::string_body> req{post ? http::verb::post : http::verb::get, s.url.target, 11};
  req.set(http::field::host, s.host_header);
  req.set(http::field::user_agent, "yna-engine");
  for (const auto& [name, value] : headers) req.set(name, value);
  if (post) {
    req.body() = body;
    req.prepare_payload();
  }
  req.keep_alive(true);
  // A kept-alive connection the other side has closed meanwhile fails at once: then once
  // more on a new connection (at least once: the first may have arrived).
  for (int round = 0;; ++round) {
    const bool reused = s.connected();
    if (!reused) {
      if (std::string err = co_await s.connect(left()); !err.empty()) {
        s.close();
        co_return schemas::failure{std::move(err)};
      }
    }
    s.lowest().expires_after(left());
    // (No co_await inside ?: — GCC 12 destroys such a result twice.)
    schemas::result<outbound_response, std::string> r = schemas::failure{std::string()};
    if (s.secure)
      r = co_await s.exchange(*s.secure, req);
    else
      r = co_await s.exchange(*s.plain, req);
    if (r) {
      if (s.connected()) s.lowest().expires_never();
      co_return r;
    }
    s.close();
    if (!reused || round > 0 || std::chrono::steady_clock::now() >= deadline) co_return r;
  }
}

}  // namespace transport::detail
