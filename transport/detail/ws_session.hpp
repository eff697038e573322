#pragma once
// One notification WebSocket (contract §5), over a plain or TLS stream. Private to
// server.cpp (Beast lives here and there only).
//
// Life: accept the upgrade → subscribe on the reactor thread (which also fixes the
// committed seq C the socket starts from, and, without `since`, the invitations still
// ringing it) → with `since` = N < C, replay (N, C] from the log on the replay worker
// while live frames (> C) wait → send replay, then the held live frames, then live.
// Frames go out in increasing sequenceNumber, each once. A reader that falls more than
// max_queue frames behind is cut off (it resumes with since); pings keep idle sockets
// honest; the socket closes (1008, "token expired") when its access token expires, past
// the leeway. All handlers run on the socket's io_context thread.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cassert>
#include <deque>
#include <memory>
#include <optional>

#include "engine/metrics.hpp"
#include "engine/reactor.hpp"
#include "transport/api.hpp"
#include "transport/detail/conn_limits.hpp"
#include "transport/detail/handoff.hpp"
#include "transport/notifier.hpp"
#include "transport/replay.hpp"
#include "transport/server.hpp"

namespace transport::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

struct ws_shared {
  websocket_services services;
  engine::gauge& open;
  engine::counter& frames_sent;
  engine::counter& slow_closed;
  engine::counter& replayed;
  engine::counter& expired_closed;
};

template <class Stream>
class ws_session final : public subscriber, public std::enable_shared_from_this<ws_session<Stream>> {
 public:
  // `slots` are the connection's slots (--max-connections, per address, per subject):
  // held until this socket is destroyed; `lane`: the hand-off to its I/O thread.
  ws_session(Stream&& stream, ws_shared& sh, handoff& lane, socket_grant grant, std::vector<slot_guard> slots)
      : ws_(std::move(stream)), sh_(sh), lane_(lane), slots_(std::move(slots)), expiry_(ws_.get_executor()) {
    sub = std::move(grant.who.sub);
    device_id = std::move(grant.who.device_id);
    msisdns = std::move(grant.who.msisdns);
    since_ = grant.since;
    token_exp_ = grant.who.exp;
    sh_.open.add(1);
  }
  ~ws_session() override {
    sh_.services.hub->unsubscribe(this);
    sh_.open.add(-1);
  }

  void run(http::request<http::string_body> req, std::string transaction_id) {
    const auto& o = sh_.services.opts;
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = o.idle_timeout;  // a ping at half of it; closed when nothing comes back
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(o.max_incoming_bytes);
    ws_.set_option(websocket::stream_base::decorator([txn = std::move(transaction_id)](websocket::response_type& res) {
      res.set(http::field::server, "yna-engine");
      res.set("x-transaction-id", txn);
    }));
    ws_.text(true);
    ws_.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->arm_expiry();
      self->do_read();
      self->subscribe();
    });
  }

  // On the reactor thread: queued with the batch's other hand-offs to this I/O thread.
  void deliver(std::shared_ptr<pending_frame> frame) override {
    lane_.push([self = this->shared_from_this(), frame = std::move(frame)] {
      if (!self->closed_) self->on_live(frame->seq(), frame->get());  // encoded here, once for all sockets
    });
  }

 private:
  enum class phase { starting, replaying, live };

  // The socket lives no longer than its access token (contract §3a).
  void arm_expiry() {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    // Expired is now > exp + leeway, as for HTTP: the first whole second after it.
    const std::int64_t left = token_exp_ + sh_.services.opts.token_leeway_s + 1 - now;
    expiry_.expires_after(std::chrono::seconds(std::clamp<std::int64_t>(left, 0, 400LL * 24 * 3600)));
    expiry_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->sh_.expired_closed.inc();
      self->close_with(websocket::close_code::policy_error, "token expired");
    });
  }

  void subscribe() {
    auto self = this->shared_from_this();
    const bool queued = sh_.services.reactor->run_on_reactor([self](const engine::call_table& table,
                                                                   engine::event_seq committed) {
      self->sh_.services.hub->subscribe(self);
      std::vector<std::pair<engine::event_seq, frame_ptr>> initial;
      if (!self->since_) initial = self->sh_.services.hub->ringing_invitations(table, *self);
      net::post(self->ws_.get_executor(), [self, committed, initial = std::move(initial)]() mutable {
        self->on_subscribed(committed, std::move(initial));
      });
    });
    if (!queued) close_now();
  }

  void on_subscribed(engine::event_seq committed, std::vector<std::pair<engine::event_seq, frame_ptr>> initial) {
    if (closed_) return;
    if (since_ && *since_ < committed) {
      phase_ = phase::replaying;
      auto self = this->shared_from_this();
      replay_job job{msisdns, sub, device_id, *since_, committed, [self](replay_result r) {
                       net::post(self->ws_.get_executor(),
                                 [self, r = std::move(r)]() mutable { self->on_replayed(std::move(r)); });
                     }};
      if (!sh_.services.replay->submit(std::move(job)))
        close_with(websocket::close_code::try_again_later, "replay busy (--max-replay-jobs); reconnect with since");
      return;
    }
    for (auto& [seq, f] : initial) enqueue(seq, std::move(f), false);
    go_live();
  }

  void on_replayed(replay_result r) {
    if (closed_) return;
    if (!r.ok)
      return close_with(r.busy ? websocket::close_code::try_again_later : websocket::close_code::policy_error, r.error);
    sh_.replayed.inc(r.frames.size());
    // The frames' bytes stay held against --max-replay-bytes until each is written. The
    // queue is empty here (live frames wait in held_), so the first replay_left_ frames
    // written are these.
    assert(queue_.empty());
    replay_lease_ = std::move(r.lease);
    for (auto& [seq, f] : r.frames) {
      const std::size_t n = f->size();
      if (enqueue(seq, std::move(f), false))
        ++replay_left_;
      else
        replay_lease_.release(n);
    }
    go_live();
  }

  void go_live() {
    phase_ = phase::live;
    auto held = std::move(held_);
    held_.clear();
    for (auto& [seq, f] : held) enqueue(seq, std::move(f), true);
  }

  void on_live(engine::event_seq seq, frame_ptr f) {
    if (closed_) return;
    if (phase_ != phase::live) {
      if (held_.size() >= sh_.services.opts.max_queue) return slow();
      held_.emplace_back(seq, std::move(f));
      return;
    }
    enqueue(seq, std::move(f), true);
  }

  // True when the frame was queued.
  bool enqueue(engine::event_seq seq, frame_ptr f, bool bounded) {
    if (closed_ || seq <= last_seq_) return false;  // each sequenceNumber once, in order
    if (bounded && queue_.size() >= sh_.services.opts.max_queue) {
      slow();
      return false;
    }
    last_seq_ = seq;
    queue_.push_back(std::move(f));
    if (!writing_) do_write();
    return true;
  }

  void do_write() {
    writing_ = true;
    ws_.async_write(net::buffer(*queue_.front()), [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) return self->close_now();
      self->sh_.frames_sent.inc();
      if (self->replay_left_ > 0) {
        --self->replay_left_;
        self->replay_lease_.release(self->queue_.front()->size());
      }
      self->queue_.pop_front();
      if (self->close_after_write_) {
        auto [code, reason] = std::move(*self->close_after_write_);
        self->close_after_write_.reset();
        self->closed_ = false;
        return self->close_with(code, std::move(reason));
      }
      if (!self->queue_.empty() && !self->closed_) self->do_write();
    });
  }

  // Client messages are not part of the protocol; reading keeps control frames (ping,
  // pong, close) flowing and notices a peer that went away.
  void do_read() {
    ws_.async_read(rbuf_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close_now();
      self->rbuf_.consume(self->rbuf_.size());
      self->do_read();
    });
  }

  // A reader that does not keep up: cut it off at once (a close frame would queue
  // behind what it does not read). It resumes with since=<last sequenceNumber seen>.
  void slow() {
    sh_.slow_closed.inc();
    close_now();
  }

  void close_with(websocket::close_code code, std::string reason) {
    if (closed_) return;
    closed_ = true;
    sh_.services.hub->unsubscribe(this);
    expiry_.cancel();
    if (reason.size() > 120) reason.resize(120);
    if (writing_) {  // one write at a time: the close frame follows the frame being written
      close_after_write_.emplace(code, std::move(reason));
      return;
    }
    ws_.async_close(websocket::close_reason(code, reason), [self = this->shared_from_this()](beast::error_code) {});
  }

  void close_now() {
    closed_ = true;
    sh_.services.hub->unsubscribe(this);
    expiry_.cancel();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  websocket::stream<Stream> ws_;
  ws_shared& sh_;
  handoff& lane_;
  std::vector<slot_guard> slots_;
  net::steady_timer expiry_;
  std::int64_t token_exp_ = 0;
  std::optional<std::pair<websocket::close_code, std::string>> close_after_write_;
  std::optional<std::uint64_t> since_;
  phase phase_ = phase::starting;
  std::deque<frame_ptr> queue_;
  replay_lease replay_lease_;     // the replayed frames' bytes not yet written
  std::size_t replay_left_ = 0;   // replayed frames at the front of queue_
  std::vector<std::pair<engine::event_seq, frame_ptr>> held_;
  engine::event_seq last_seq_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  beast::flat_buffer rbuf_;
};

}  // namespace transport::detail
