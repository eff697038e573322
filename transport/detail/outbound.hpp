#pragma once
// Outbound HTTP(S) under contract §13's rules (webhooks, push gateways, x5u fetches): only
// to hosts in --outbound-allow; the address actually connected (after DNS) is never
// loopback, private, link-local or otherwise special unless that exact address is
// listed; no redirects are followed (a 3xx is an answer like any other); HTTPS verifies
// the peer against the system roots plus --outbound-ca, with the URL's host name.
// Asio coroutines; one connection serves one request at a time and is kept alive.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include "schemas/result.hpp"
#include "transport/webhook.hpp"

namespace transport::detail {

// Loopback, private (RFC 1918, IPv6 unique local), link-local, shared (100.64/10),
// unspecified, multicast, reserved (240/4, broadcast); an IPv4-mapped IPv6 address as its
// IPv4 address.
bool is_special_address(const boost::asio::ip::address& a);

struct outbound_policy {
  std::vector<std::string> allow;  // --outbound-allow: host names and addresses

  // The URL's host is listed (case-insensitive; an address literal as written or in its
  // canonical form).
  bool host_allowed(std::string_view host) const;
  // Not special, or exactly listed.
  bool address_allowed(const boost::asio::ip::address& a) const;
};

// The client TLS context: TLS 1.2 or newer, peer verification on, the system roots plus
// `ca_file` (PEM, optional). Throws std::runtime_error naming the file when it does not load.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const std::string& ca_file);

struct outbound_response {
  int status = 0;
  std::string body;  // at most 64 KiB read
};

using outbound_headers = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection to one URL's origin. Not thread-safe: one coroutine at a time,
// on the executor it was made with.
class outbound_connection {
 public:
  outbound_connection(const outbound_url& url, const outbound_policy& policy,
                      std::shared_ptr<boost::asio::ssl::context> tls);
  ~outbound_connection();
  outbound_connection(const outbound_connection&) = delete;
  outbound_connection& operator=(const outbound_connection&) = delete;

  // POSTs `body` to the URL (connecting first when not connected), the whole exchange
  // within `timeout`. Failure: why (resolve, an address not allowed, connect, TLS, write,
  // read, timeout); the connection is closed then.
  boost::asio::awaitable<schemas::result<outbound_response, std::string>> post(const outbound_headers& headers,
                                                                              const std::string& body,
                                                                              std::chrono::milliseconds timeout);
  // The same exchange as a GET (no body): x5u certificate fetches (contract §11).
  boost::asio::awaitable<schemas::result<outbound_response, std::string>> get(const outbound_headers& headers,
                                                                             std::chrono::milliseconds timeout);
  // Closes the socket, so that a post() in flight fails at once (on the executor's thread).
  void close();

 private:
  boost::asio::awaitable<schemas::result<outbound_response, std::string>> send(bool post,
                                                                              const outbound_headers& headers,
                                                                              const std::string& body,
                                                                              std::chrono::milliseconds timeout);
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace transport::detail
