#include "transport/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/log.hpp"
#include "transport/detail/conn_limits.hpp"
#include "transport/detail/handoff.hpp"
#include "transport/detail/request_reader.hpp"
#include "transport/detail/ws_session.hpp"

namespace transport {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct shared_state {
  server_options opts;
  std::optional<net::ssl::context> tls;
  api& handler;
  detail::ws_shared ws;
  detail::conn_limits limits;
  std::vector<net::ip::address> trusted_proxies;
  engine::gauge& open_gauge;
  engine::counter& refused;
  engine::counter& refused_ip;
  engine::counter& refused_sub;
  engine::counter& timeouts;
  engine::counter& health_slot_used;

  bool trusted(const net::ip::address& a) const {
    return std::find(trusted_proxies.begin(), trusted_proxies.end(), a) != trusted_proxies.end();
  }
};

// The client's address as a key for --max-connections-per-ip (v4-mapped v6 as v4).
std::string address_key(const net::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

std::string_view header(const http::request<http::string_body>& req, std::string_view name, bool& present) {
  auto it = req.find(beast::string_view(name.data(), name.size()));
  present = it != req.end();
  if (!present) return {};
  auto v = it->value();
  return {v.data(), v.size()};
}

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// One HTTP connection over Stream (plain TCP or TLS). Reads a request, hands it to the
// api, writes the answer, reads the next (keep-alive). Lives as long as an async
// operation holds it; all its handlers run on its socket's io_context (one thread).
template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
 public:
  // `slots`: the connection's --max-connections (or health) slot and its per-address
  // slot; `proxied`: the peer is a trusted proxy, which may name the client first.
  // `lane`: the hand-off to this connection's I/O thread (the socket's io_context).
  http_session(tcp::socket&& socket, shared_state& st, detail::handoff& lane, std::vector<detail::slot_guard> slots,
               bool health_only, bool proxied)
      : stream_(make_stream(std::move(socket), st)),
        st_(st),
        lane_(lane),
        slots_(std::move(slots)),
        health_only_(health_only),
        proxy_pending_(proxied) {
    st_.open_gauge.add(1);
    if (health_only_) st_.health_slot_used.inc();
  }
  ~http_session() { st_.open_gauge.add(-1); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        // The handshake's first byte by --first-byte-timeout, the whole of it by
        // --read-timeout (the shorter of the two bounds it).
        beast::get_lowest_layer(self->stream_)
            .expires_after(std::min(self->st_.opts.read_timeout, self->st_.opts.first_byte_timeout));
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->close();  // not TLS, old protocol version, or timed out
          self->do_read();
        });
      } else {
        self->do_read();
      }
    });
  }

 private:
  static Stream make_stream(tcp::socket&& socket, shared_state& st) {
    if constexpr (std::is_same_v<Stream, tls_stream>)
      return Stream(std::move(socket), *st.tls);
    else
      return Stream(std::move(socket));
  }
  auto& lowest() { return beast::get_lowest_layer(stream_); }
  auto self() { return this->shared_from_this(); }

  // The first read of a connection: a trusted proxy's PROXY header names the client
  // (its address then takes a --max-connections-per-ip slot); then the first request.
  void do_read() {
    reader_.emplace(detail::framing_limits{st_.opts.max_header_bytes, st_.opts.max_body_bytes});
    if (buffer_.size() > 0) return read_request();  // pipelined bytes already here
    // Idle until the first byte of the next request arrives: --first-byte-timeout on a
    // new connection (a reserved health slot gets at most a second), --idle-timeout
    // between keep-alive requests.
    auto wait = st_.opts.idle_timeout;
    if (requests_ == 0) wait = health_only_ ? std::min<std::chrono::milliseconds>(st_.opts.first_byte_timeout,
                                                                               std::chrono::seconds(1))
                                            : st_.opts.first_byte_timeout;
    lowest().expires_after(wait);
    stream_.async_read_some(buffer_.prepare(read_size), [self = self()](beast::error_code ec, std::size_t n) {
      if (ec) return self->on_error(ec);
      self->buffer_.commit(n);
      self->read_request();
    });
  }

  // ...then one deadline for the whole request, headers and body: a slowloris client
  // that trickles bytes is cut off after --read-timeout however it paces them.
  void read_request() {
    lowest().expires_after(st_.opts.read_timeout);
    parse();
  }

  void parse() {
    if (proxy_pending_ && !read_proxy_header()) return;
    const auto data = buffer_.data();
    const std::size_t used = reader_->feed(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.consume(used);
    switch (reader_->status()) {
      case detail::request_reader::state::complete:
        return on_request();
      case detail::request_reader::state::failed: {
        bool present = false;  // the fields parsed so far carry the request's transaction id
        const std::string_view txn = header(reader_->request(), "x-transaction-id", present);
        return reply_and_close(st_.handler.protocol_error(reader_->error().code, reader_->error().message, txn));
      }
      case detail::request_reader::state::need_more:
        break;
    }
    stream_.async_read_some(buffer_.prepare(read_size), [self = self()](beast::error_code ec, std::size_t n) {
      if (ec) return self->on_error(ec);
      self->buffer_.commit(n);
      self->parse();
    });
  }

  // False when the session waits for more bytes or ended.
  bool read_proxy_header() {
    const auto data = buffer_.data();
    const auto h = detail::parse_proxy_v1(std::string_view(static_cast<const char*>(data.data()), data.size()));
    switch (h.status) {
      case detail::proxy_header::state::need_more:
        stream_.async_read_some(buffer_.prepare(read_size), [self = self()](beast::error_code ec, std::size_t n) {
          if (ec) return self->on_error(ec);
          self->buffer_.commit(n);
          self->parse();
        });
        return false;
      case detail::proxy_header::state::invalid:
        close();
        return false;
      case detail::proxy_header::state::complete:
        buffer_.consume(h.length);
        if (!h.source.empty()) {
          auto slot = st_.limits.acquire_ip(h.source);
          if (!slot) {
            st_.refused_ip.inc();
            close();
            return false;
          }
          slots_.push_back(std::move(*slot));
        }
        break;
      case detail::proxy_header::state::absent:
        break;
    }
    proxy_pending_ = false;
    return true;
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset)
      return close();
    if (ec == beast::error::timeout) {
      st_.timeouts.inc();
      return close();
    }
    return close();  // a TLS or socket error: nothing more can be said on this connection
  }

  void on_request() {
    lowest().expires_never();
    ++requests_;
    const auto& req = reader_->request();
    keep_alive_ = req.keep_alive();
    if (health_only_) return serve_health_only();
    if (beast::websocket::is_upgrade(req)) return upgrade();
    on_plain_request();
  }

  void on_plain_request() {
    const auto& req = reader_->request();
    http_request r;
    r.method = std::string_view(req.method_string().data(), req.method_string().size());
    r.target = std::string_view(req.target().data(), req.target().size());
    r.body = req.body();
    bool present = false;  // Authorization: absent and empty are the same (401 missing)
    r.authorization = header(req, "Authorization", present);
    r.x_authorization = header(req, "X-Authorization", r.has_x_authorization);
    r.header = [&req](std::string_view name) -> std::optional<std::string_view> {
      bool found = false;
      auto v = header(req, name, found);
      if (!found) return std::nullopt;
      return v;
    };
    r.transaction_id = header(req, "x-transaction-id", r.has_transaction_id);
    r.reason = header(req, "reason", r.has_reason);
    r.conference = header(req, "conference", r.has_conference);
    st_.handler.handle(
        r,
        [self = self()](http_response res) {
          net::post(self->stream_.get_executor(),
                    [self, res = std::move(res)]() mutable { self->write(std::move(res), self->keep_alive_); });
        },
        // From the reactor thread: the response is made here, on this connection's thread,
        // when the reactor hands its batch's replies over (one post per I/O thread).
        [self = self()](render_fn make) {
          self->lane_.push([self, make = std::move(make)] { self->write(make(), self->keep_alive_); });
        });
  }

  // A connection in a reserved health slot (every other slot taken): /healthz and
  // /readyz are answered, anything else 503; either way the connection closes.
  void serve_health_only() {
    const auto& req = reader_->request();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view method(req.method_string().data(), req.method_string().size());
    if (!beast::websocket::is_upgrade(req) && st_.handler.is_health_check(method, target)) {
      keep_alive_ = false;
      return on_plain_request();
    }
    http_response res = st_.handler.protocol_error(schemas::reason_code::service_unavailable,
                                                   "every connection slot is taken (--max-connections); this "
                                                   "reserved slot serves only /healthz and /readyz");
    res.retry_after_s = 1;
    reply_and_close(std::move(res));
  }

  // GET /notifications with Upgrade: websocket. The stream moves into a ws_session;
  // this HTTP session ends here.
  void upgrade() {
    const auto& req = reader_->request();
    http_request r;
    r.method = std::string_view(req.method_string().data(), req.method_string().size());
    r.target = std::string_view(req.target().data(), req.target().size());
    bool present = false;
    r.authorization = header(req, "Authorization", present);
    r.transaction_id = header(req, "x-transaction-id", r.has_transaction_id);
    auto grant = st_.handler.authorize_socket(r);
    if (auto* refused = std::get_if<http_response>(&grant)) return reply_and_close(std::move(*refused));
    auto& g = std::get<socket_grant>(grant);
    auto sub_slot = st_.limits.acquire_sub(g.who.sub);
    if (!sub_slot) {
      st_.refused_sub.inc();
      http_response res = st_.handler.protocol_error(
          schemas::reason_code::too_many_requests,
          "this subject has too many notification sockets open (--max-sockets-per-sub)", g.transaction_id);
      res.retry_after_s = 1;
      return reply_and_close(std::move(res));
    }
    slots_.push_back(std::move(*sub_slot));
    std::string txn = g.transaction_id;
    std::make_shared<detail::ws_session<Stream>>(std::move(stream_), st_.ws, lane_, std::move(g), std::move(slots_))
        ->run(reader_->release(), std::move(txn));
  }

  void reply_and_close(http_response res) { write(std::move(res), false); }

  void write(http_response res, bool keep_alive) {
    auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), 11);
    msg->set(http::field::server, "yna-engine");
    msg->set(http::field::content_type, beast::string_view(res.content_type.data(), res.content_type.size()));
    msg->set("x-transaction-id", res.transaction_id);
    if (!res.allow.empty()) msg->set(http::field::allow, beast::string_view(res.allow.data(), res.allow.size()));
    if (res.retry_after_s > 0) msg->set(http::field::retry_after, std::to_string(res.retry_after_s));
    if (!res.cache_control.empty())
      msg->set(http::field::cache_control, beast::string_view(res.cache_control.data(), res.cache_control.size()));
    if (!res.location.empty()) msg->set(http::field::location, res.location);
    msg->keep_alive(keep_alive);
    msg->body() = std::move(res.body);
    msg->prepare_payload();
    lowest().expires_after(st_.opts.read_timeout);
    http::async_write(stream_, *msg, [self = self(), msg, keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive) return self->close();
      self->do_read();
    });
  }

  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().close();
  }

  static constexpr std::size_t read_size = 16 * 1024;

  Stream stream_;
  beast::flat_buffer buffer_;
  shared_state& st_;
  detail::handoff& lane_;
  std::vector<detail::slot_guard> slots_;  // moved to the WebSocket on upgrade
  std::optional<detail::request_reader> reader_;
  bool keep_alive_ = false;
  bool health_only_ = false;
  bool proxy_pending_ = false;
  std::uint64_t requests_ = 0;
};

}  // namespace

std::vector<net::ip::address> trusted_addresses(const std::vector<std::string>& list) {
  std::vector<net::ip::address> out;
  for (const auto& a : list) out.push_back(net::ip::make_address(a));  // validated by main
  return out;
}

struct server::impl {
  impl(server_options o, api& handler, websocket_services ws, engine::registry& m)
      : st{o,
           {},
           handler,
           detail::ws_shared{ws, m.get_gauge("yna_ws_connections", "Open notification WebSockets"),
                             m.get_counter("yna_ws_frames_sent_total", "Notification frames written to WebSockets"),
                             m.get_counter("yna_ws_slow_closed_total",
                                           "WebSockets cut off for falling more than max_queue frames behind"),
                             m.get_counter("yna_ws_replayed_frames_total", "Frames replayed from the log (since=)"),
                             m.get_counter("yna_ws_token_expired_closed_total",
                                           "WebSockets closed (1008) because their access token expired")},
           detail::conn_limits(
               detail::conn_limit_options{o.max_connections, o.health_slots, o.max_connections_per_ip,
                                          o.max_sockets_per_sub},
               detail::conn_limit_gauges{
                   &m.get_gauge("yna_http_client_addresses",
                                "Client addresses holding a connection slot (each at most --max-connections-per-ip; "
                                "forgotten with their last connection)"),
                   &m.get_gauge("yna_ws_subjects",
                                "Subjects holding a notification socket slot (each at most --max-sockets-per-sub; "
                                "forgotten with their last socket)")}),
           trusted_addresses(o.trusted_proxies),
           m.get_gauge("yna_http_connections", "Open HTTP connections"),
           m.get_counter("yna_http_connections_refused_total",
                         "Connections closed at once: over --max-connections and every health slot taken"),
           m.get_counter("yna_http_connections_refused_per_ip_total",
                         "Connections closed at once: over --max-connections-per-ip for their address"),
           m.get_counter("yna_ws_refused_per_sub_total",
                         "WebSocket upgrades refused (429): over --max-sockets-per-sub for their subject"),
           m.get_counter("yna_http_timeouts_total",
                         "Connections closed by the first-byte, read or idle timeout"),
           m.get_counter("yna_http_health_slot_connections_total",
                         "Connections served in a reserved health slot (every other slot taken)")} {
    const std::size_t n = std::max<std::size_t>(1, st.opts.threads);
    for (std::size_t i = 0; i < n; ++i) {
      iocs.push_back(std::make_unique<net::io_context>(1));
      guards.emplace_back(net::make_work_guard(*iocs.back()));
      lanes.push_back(std::make_unique<detail::handoff>(*iocs.back()));
    }
    acceptor.emplace(*iocs.front());
  }

  void setup_tls() {
    if (!st.opts.tls_cert_file.empty()) {
      // TLS 1.2 or newer only; the certificate chain and key are PEM files.
      st.tls.emplace(net::ssl::context::tls_server);
      st.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                          net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                          net::ssl::context::single_dh_use);
      SSL_CTX_set_min_proto_version(st.tls->native_handle(), TLS1_2_VERSION);
      // Forward-secret suites only (contract §3a): ECDHE with AEAD for TLS 1.2; TLS 1.3's
      // suites are all forward secret.
      if (SSL_CTX_set_cipher_list(st.tls->native_handle(),
                                  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1)
        throw std::runtime_error("TLS: no forward-secret cipher suite available");
      SSL_CTX_set_options(st.tls->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
      st.tls->use_certificate_chain_file(st.opts.tls_cert_file);
      st.tls->use_private_key_file(st.opts.tls_key_file, net::ssl::context::pem);
    }
  }

  void do_accept() {
    detail::handoff& lane = *lanes[next_ioc++ % lanes.size()];
    acceptor->async_accept(lane.context(), [this, &lane](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
        return do_accept();  // e.g. EMFILE: keep serving the others
      }
      admit(std::move(socket), lane);
      do_accept();
    });
  }

  // Slots (contract §3a): one of --max-connections (or a reserved health slot), and one
  // of the peer address's --max-connections-per-ip; a trusted proxy's connections count
  // under the client its PROXY header names instead.
  void admit(tcp::socket socket, detail::handoff& lane) {
    beast::error_code ec;
    const auto peer = socket.remote_endpoint(ec);
    if (ec) return;
    std::vector<detail::slot_guard> slots;
    bool health_only = false;
    auto conn = st.limits.acquire_connection(health_only);
    if (!conn) {
      st.refused.inc();
      return socket.close(ec);
    }
    slots.push_back(std::move(*conn));
    const bool proxied = st.trusted(peer.address());
    if (!proxied) {
      auto ip = st.limits.acquire_ip(address_key(peer.address()));
      if (!ip) {
        st.refused_ip.inc();
        return socket.close(ec);
      }
      slots.push_back(std::move(*ip));
    }
    if (st.tls)
      std::make_shared<http_session<tls_stream>>(std::move(socket), st, lane, std::move(slots), health_only, false)
          ->run();
    else
      std::make_shared<http_session<plain_stream>>(std::move(socket), st, lane, std::move(slots), health_only,
                                                   proxied)
          ->run();
  }

  shared_state st;
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  // One per I/O thread (iocs[i]). After iocs: destroyed first, with the sessions its
  // unrun items hold, while their io_contexts still exist.
  std::vector<std::unique_ptr<detail::handoff>> lanes;
  std::optional<tcp::acceptor> acceptor;
  std::size_t next_ioc = 0;
  // Held by stop() throughout, and by ~server before anything is destroyed. stop() runs on
  // another thread (yna-engine's signal thread), and run() returns as soon as the I/O
  // threads see the work end, while stop() may still be writing the guards (reset() clears
  // its flag after releasing the work) and Asio still signalling the io_contexts: without
  // this the server could be destroyed under it (ThreadSanitizer caught the guard write).
  std::mutex stop_mu;
};

server::server(server_options opts, api& handler, websocket_services ws, engine::registry& metrics)
    : impl_(std::make_unique<impl>(std::move(opts), handler, ws, metrics)) {}

server::~server() {
  std::lock_guard lk(impl_->stop_mu);  // a stop() in progress on another thread is finished first
}

std::uint16_t server::start() {
  impl_->setup_tls();
  auto& a = *impl_->acceptor;
  const tcp::endpoint ep(net::ip::make_address(impl_->st.opts.host), impl_->st.opts.port);
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen(net::socket_base::max_listen_connections);
  impl_->do_accept();
  return a.local_endpoint().port();
}

void server::run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < impl_->iocs.size(); ++i)
    threads.emplace_back([this, i] {
      engine::log::name_this_thread(("yna-io-" + std::to_string(i)).c_str());
      impl_->iocs[i]->run();
    });
  impl_->iocs.front()->run();  // I/O thread 0 is the main thread: it keeps the process's name
  for (auto& t : threads) t.join();
}

void server::flush_handoffs() {
  for (auto& l : impl_->lanes) l->flush();
}

void server::stop() {
  std::lock_guard lk(impl_->stop_mu);
  net::post(*impl_->iocs.front(), [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
  });
  for (auto& g : impl_->guards) g.reset();
  for (auto& ioc : impl_->iocs) ioc->stop();
}

}  // namespace transport
