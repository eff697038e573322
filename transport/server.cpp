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
  std::atomic<std::size_t> connections{0};
  engine::gauge& open_gauge;
  engine::counter& refused;
  engine::counter& timeouts;
};

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
  http_session(tcp::socket&& socket, shared_state& st) : stream_(make_stream(std::move(socket), st)), st_(st) {
    st_.open_gauge.add(1);
  }
  ~http_session() {
    // An upgraded connection keeps its --max-connections slot: the WebSocket frees it.
    if (!upgraded_) st_.connections.fetch_sub(1);
    st_.open_gauge.add(-1);
  }

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        beast::get_lowest_layer(self->stream_).expires_after(self->st_.opts.read_timeout);
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

  void do_read() {
    parser_.emplace();
    parser_->body_limit(st_.opts.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(st_.opts.max_header_bytes));
    if (buffer_.size() > 0) return read_request();  // pipelined bytes already here
    // Idle until the first byte of the next request arrives...
    lowest().expires_after(st_.opts.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = self()](beast::error_code ec, std::size_t n) {
      if (ec) return self->on_error(ec);
      self->buffer_.commit(n);
      self->read_request();
    });
  }

  // ...then one deadline for the whole request, headers and body: a slowloris client
  // that trickles bytes is cut off after --read-timeout however it paces them.
  void read_request() {
    lowest().expires_after(st_.opts.read_timeout);
    header_bytes_ = 0;
    read_header_part();
  }

  // Beast's header_limit bounds only the bytes of one parse step (complete fields are
  // consumed step by step), so a header sent in pieces could grow without end: the
  // header bytes of every step are added up here and the total is held to the limit.
  // (The parser is not eager: a step stops at the end of the header, so the count is
  // exact.)
  void read_header_part() {
    http::async_read_some(stream_, buffer_, *parser_, [self = self()](beast::error_code ec, std::size_t n) {
      self->header_bytes_ += n;
      if (ec) return self->on_error(ec);
      if (self->header_bytes_ > self->st_.opts.max_header_bytes)
        return self->reply_and_close(self->st_.handler.protocol_error(
            schemas::reason_code::headers_too_large, "the headers are larger than the limit (--max-header-bytes)"));
      if (!self->parser_->is_header_done()) return self->read_header_part();
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code ec, std::size_t) { self->on_read(ec); });
    });
  }

  void on_error(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset)
      return close();
    if (ec == beast::error::timeout) {
      st_.timeouts.inc();
      return close();
    }
    if (ec == http::error::body_limit) {
      bool present = false;  // the fields parsed so far carry the request's transaction id
      const auto txn = header(parser_->get(), "x-transaction-id", present);
      return reply_and_close(st_.handler.protocol_error(schemas::reason_code::body_too_large,
                                                        "the body is larger than the limit (--max-body-bytes)", txn));
    }
    if (ec == http::error::header_limit)
      return reply_and_close(st_.handler.protocol_error(schemas::reason_code::headers_too_large,
                                                        "the headers are larger than the limit (--max-header-bytes)"));
    // Anything else is a malformed HTTP request.
    return reply_and_close(st_.handler.protocol_error(schemas::reason_code::invalid_field,
                                                      std::string("malformed HTTP request: ") + ec.message()));
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_error(ec);
    lowest().expires_never();
    const auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    if (beast::websocket::is_upgrade(req)) return upgrade();
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
    st_.handler.handle(r, [self = self()](http_response res) {
      net::post(self->stream_.get_executor(),
                [self, res = std::move(res)]() mutable { self->write(std::move(res), self->keep_alive_); });
    });
  }

  // GET /notifications with Upgrade: websocket. The stream moves into a ws_session;
  // this HTTP session ends here.
  void upgrade() {
    const auto& req = parser_->get();
    http_request r;
    r.method = std::string_view(req.method_string().data(), req.method_string().size());
    r.target = std::string_view(req.target().data(), req.target().size());
    bool present = false;
    r.authorization = header(req, "Authorization", present);
    r.transaction_id = header(req, "x-transaction-id", r.has_transaction_id);
    auto grant = st_.handler.authorize_socket(r);
    if (auto* refused = std::get_if<http_response>(&grant)) return reply_and_close(std::move(*refused));
    auto& g = std::get<socket_grant>(grant);
    std::string txn = g.transaction_id;
    upgraded_ = true;
    std::make_shared<detail::ws_session<Stream>>(std::move(stream_), st_.ws, std::move(g), st_.connections)
        ->run(parser_->release(), std::move(txn));
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

  Stream stream_;
  beast::flat_buffer buffer_;
  shared_state& st_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  bool upgraded_ = false;
  std::size_t header_bytes_ = 0;
};

}  // namespace

struct server::impl {
  impl(server_options o, api& handler, websocket_services ws, engine::registry& m)
      : st{std::move(o), {}, handler,
           detail::ws_shared{ws, m.get_gauge("yna_ws_connections", "Open notification WebSockets"),
                             m.get_counter("yna_ws_frames_sent_total", "Notification frames written to WebSockets"),
                             m.get_counter("yna_ws_slow_closed_total",
                                           "WebSockets cut off for falling more than max_queue frames behind"),
                             m.get_counter("yna_ws_replayed_frames_total", "Frames replayed from the log (since=)")},
           {},
           m.get_gauge("yna_http_connections", "Open HTTP connections"),
           m.get_counter("yna_http_connections_refused_total", "Connections closed at once: over --max-connections"),
           m.get_counter("yna_http_timeouts_total", "Connections closed by the read or idle timeout")} {
    const std::size_t n = std::max<std::size_t>(1, st.opts.threads);
    for (std::size_t i = 0; i < n; ++i) {
      iocs.push_back(std::make_unique<net::io_context>(1));
      guards.emplace_back(net::make_work_guard(*iocs.back()));
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
      st.tls->use_certificate_chain_file(st.opts.tls_cert_file);
      st.tls->use_private_key_file(st.opts.tls_key_file, net::ssl::context::pem);
    }
  }

  void do_accept() {
    net::io_context& next = *iocs[next_ioc++ % iocs.size()];
    acceptor->async_accept(next, [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
        return do_accept();  // e.g. EMFILE: keep serving the others
      }
      if (st.connections.fetch_add(1) >= st.opts.max_connections) {
        st.connections.fetch_sub(1);
        st.refused.inc();
        beast::error_code ignore;
        socket.close(ignore);
      } else {
        if (st.tls)
          std::make_shared<http_session<tls_stream>>(std::move(socket), st)->run();
        else
          std::make_shared<http_session<plain_stream>>(std::move(socket), st)->run();
      }
      do_accept();
    });
  }

  shared_state st;
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
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
