// The webhook dispatcher's thread (transport/webhook_dispatcher.hpp). Per destination,
// on one io_context: a reader coroutine that tops the destination's delivery_queue up
// from the log, `concurrency` sender coroutines that each own a kept-alive connection and
// send the queue's due deliveries, and one saver for all that writes the cursors and the
// lag gauges every 200 ms.
#include "transport/webhook_dispatcher.hpp"

#include <atomic>
#include <random>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/log.hpp"
#include "engine/notify.hpp"
#include "schemas/digest.hpp"
#include "transport/detail/outbound.hpp"

namespace transport {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_chunk = 256;  // events read from the log at once
constexpr std::string_view cursor_prefix = "webhook:";
// How often a moved cursor is written (a Put without a sync: cheap). What a crash loses
// of it is delivered again.
constexpr milliseconds save_every{200};
// After a delivery, the cursor is written at once unless it was written this recently.
constexpr milliseconds save_soonest{20};

engine::epoch_ms wall_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The cursor's name: the URL as shown (no query), and when it has a query a digest of
// the whole URL, so two URLs that differ only there keep two cursors.
std::string cursor_name(std::string_view url, const outbound_url& u) {
  std::string name(cursor_prefix);
  name += u.shown();
  if (u.target.find('?') != std::string::npos) name += "?" + schemas::to_hex(schemas::sha256(url)).substr(0, 12);
  return name;
}

}  // namespace

struct webhook_dispatcher::impl {
  struct destination {
    std::string url, name;
    outbound_url where;
    delivery_queue queue;
    engine::event_seq saved = 0;
    steady::time_point saved_at{};
    // One timer per waiter: setting a timer's expiry cancels every wait on it, so senders
    // sharing one would wake each other without end.
    std::unique_ptr<net::steady_timer> wake_reader;
    std::vector<std::unique_ptr<net::steady_timer>> sender_timers;
    std::vector<std::unique_ptr<detail::outbound_connection>> connections;
    bool failing = false;
    engine::counter *delivered = nullptr, *retried = nullptr, *dead = nullptr;
    engine::gauge *pending = nullptr, *lag_events = nullptr, *lag_ms = nullptr;
    engine::histogram* latency = nullptr;
  };

  engine::delivery_source& log;
  webhook_settings settings;
  detail::outbound_policy policy;
  std::shared_ptr<net::ssl::context> tls;
  net::io_context io{1};
  std::vector<std::unique_ptr<destination>> dests;
  std::unique_ptr<net::steady_timer> saver_timer;
  std::thread thread;
  std::atomic<bool> sleeping{false};
  bool stopping = false;  // io thread only
  std::mt19937_64 rng{std::random_device{}()};

  impl(engine::delivery_source& l, webhook_settings s) : log(l), settings(std::move(s)) {
    policy.allow = settings.outbound_allow;
  }

  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

  void save(destination& d) {
    const auto c = d.queue.cursor();
    if (c == d.saved) return;
    d.saved_at = steady::now();
    if (log.set_cursor(d.name, c)) d.saved = c;
  }

  void gauges(destination& d) {
    d.pending->set(static_cast<std::int64_t>(d.queue.pending()));
    const auto ack = log.acknowledged_seq();
    const auto cur = d.queue.cursor();
    d.lag_events->set(ack > cur ? static_cast<std::int64_t>(ack - cur) : 0);
    const auto oldest = d.queue.oldest();
    d.lag_ms->set(oldest ? std::max<std::int64_t>(0, wall_ms() - *oldest) : 0);
  }

  // Fills the queue from the log while it has room; sleeps when the log has nothing new
  // (notify() wakes it; a one-second poll is the safety net).
  net::awaitable<void> reader(destination& d) {
    while (!stopping) {
      if (d.queue.pending() >= settings.max_pending) {
        d.wake_reader->expires_after(std::chrono::seconds(1));
        co_await d.wake_reader->async_wait(nothrow);
        continue;
      }
      auto events = log.events_after(d.queue.read_upto(), read_chunk);
      if (events.empty()) {
        sleeping.store(true);
        if (log.acknowledged_seq() > d.queue.read_upto()) continue;  // acknowledged meanwhile
        d.wake_reader->expires_after(std::chrono::seconds(1));
        co_await d.wake_reader->async_wait(nothrow);
        continue;
      }
      for (const auto& e : events) {
        std::vector<std::pair<std::string, std::string>> owed;
        if (auto n = engine::derive_notification(e)) {
          const std::string frame = engine::encode_notification(*n, settings.base_path);
          for (auto& m : n->recipients()) {
            std::string body = webhook_body(e.seq, m, frame);
            owed.emplace_back(std::move(m), std::move(body));
          }
        }
        d.queue.add(e.seq, e.time, std::move(owed));
      }
      wake_senders(d);
    }
  }

  static void wake_senders(destination& d) {
    for (auto& t : d.sender_timers) t->cancel();
  }

  // Not in the coroutine: GCC 12 mishandles initializer lists of strings in coroutine
  // frames (a double free).
  detail::outbound_headers signed_headers(const delivery_queue::delivery& job) const {
    detail::outbound_headers h;
    h.emplace_back("Content-Type", "application/json");
    h.emplace_back("Yna-Delivery", webhook_id(job.seq, job.msisdn));
    h.emplace_back("Yna-Signature", webhook_signature(settings.secret, wall_ms() / 1000, job.body));
    return h;
  }

  // Sends the queue's due deliveries over one kept-alive connection.
  net::awaitable<void> sender(destination& d, detail::outbound_connection& conn, net::steady_timer& wake) {
    while (!stopping) {
      const auto now = steady::now();
      delivery_queue::delivery* job = d.queue.take(now);
      if (!job) {
        const auto due = d.queue.next_due();
        wake.expires_at(due ? *due : now + std::chrono::hours(1));
        co_await wake.async_wait(nothrow);
        continue;
      }
      const detail::outbound_headers headers = signed_headers(*job);
      auto r = co_await conn.post(headers, job->body, settings.timeout);
      if (stopping) co_return;  // the queue is abandoned: what was in flight comes again
      if (r && r->status >= 200 && r->status < 300) {
        d.latency->observe(static_cast<double>(std::max<engine::epoch_ms>(0, wall_ms() - job->committed)) / 1000.0);
        d.queue.delivered(job);
        d.delivered->inc();
        if (steady::now() - d.saved_at >= save_soonest) save(d);
        if (d.failing) {
          d.failing = false;
          engine::log::info("webhook {}: delivering again", d.where.shown());
        }
      } else {
        const std::string why = r ? "answered " + std::to_string(r->status) : r.error();
        const std::string id = webhook_id(job->seq, job->msisdn);
        const int failures = job->failures + 1;
        if (d.queue.failed(job, steady::now(), wall_ms(), settings.retry, unit())) {
          d.retried->inc();
          if (!d.failing) {
            d.failing = true;
            engine::log::warn("webhook {}: delivery {} failed ({}); retrying with backoff", d.where.shown(), id, why);
          }
        } else {
          d.dead->inc();
          engine::log::warn("webhook {}: delivery {} is dead after {} attempts (last: {}): its event is older than "
                            "--webhook-max-age",
                            d.where.shown(), id, failures, why);
        }
      }
      d.wake_reader->cancel();   // room in the queue
      wake_senders(d);  // the lane's next delivery is due, or a retry time changed
    }
  }

  net::awaitable<void> saver() {
    while (!stopping) {
      for (auto& d : dests) {
        save(*d);
        gauges(*d);
      }
      saver_timer->expires_after(save_every);
      co_await saver_timer->async_wait(nothrow);
    }
  }

  void wake_readers() {
    for (auto& d : dests) d->wake_reader->cancel();
  }
};

webhook_dispatcher::webhook_dispatcher(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

webhook_dispatcher::~webhook_dispatcher() { stop(); }

schemas::result<std::unique_ptr<webhook_dispatcher>, std::string> webhook_dispatcher::create(
    engine::delivery_source& log, webhook_settings settings, engine::registry& metrics) {
  if (settings.secret.empty()) return schemas::failure{std::string("the webhook secret is empty")};
  auto s = std::make_unique<impl>(log, std::move(settings));
  try {
    s->tls = detail::make_client_tls(s->settings.outbound_ca);
  } catch (const std::exception& e) {
    return schemas::failure{std::string(e.what())};
  }
  auto cursors = log.cursors();
  const auto head = log.acknowledged_seq();
  for (const auto& url : s->settings.urls) {
    auto u = parse_outbound_url(url);
    if (!u) return schemas::failure{"--webhook " + u.error()};
    if (!s->policy.host_allowed(u->host))
      return schemas::failure{"--webhook " + u->shown() + ": its host " + u->host +
                              " is not in --outbound-allow (contract §13: nothing outbound goes to a host not listed)"};
    auto d = std::make_unique<impl::destination>();
    d->url = url;
    d->where = *u;
    d->name = cursor_name(url, *u);
    for (const auto& other : s->dests)
      if (other->name == d->name) return schemas::failure{"--webhook " + u->shown() + " is given twice"};
    engine::event_seq start = head;
    if (auto it = cursors.find(d->name); it != cursors.end()) {
      start = it->second;
      cursors.erase(it);
      engine::log::info("webhook {}: delivering from event {} (its cursor)", u->shown(), start + 1);
    } else {
      if (!log.set_cursor(d->name, start)) return schemas::failure{"webhook " + u->shown() + ": cannot save its cursor"};
      engine::log::info("webhook {}: new destination, owed every notification after event {}", u->shown(), start);
    }
    d->queue = delivery_queue(start);
    d->saved = start;
    const std::string label = "destination=\"" + u->shown() + "\"";
    d->delivered = &metrics.get_counter("yna_webhook_delivered_total", "Webhook deliveries answered 2xx", label);
    d->retried = &metrics.get_counter("yna_webhook_retries_total", "Webhook attempts that failed and will be retried", label);
    d->dead = &metrics.get_counter("yna_webhook_dead_total",
                                   "Webhook deliveries given up after --webhook-max-age (logged)", label);
    d->pending = &metrics.get_gauge("yna_webhook_pending", "Webhook deliveries read from the log, not yet done", label);
    d->lag_events = &metrics.get_gauge("yna_webhook_lag_events",
                                       "Acknowledged events past the destination's cursor", label);
    d->lag_ms = &metrics.get_gauge("yna_webhook_lag_milliseconds",
                                   "Age of the oldest event with a delivery not done (0: none)", label);
    d->latency = &metrics.get_histogram("yna_webhook_delivery_seconds", "From an event's time to its 2xx answer",
                                        engine::latency_buckets_seconds(), label);
    s->dests.push_back(std::move(d));
  }
  for (const auto& [name, seq] : cursors) {
    if (!name.starts_with(cursor_prefix)) continue;
    log.set_cursor(name, std::nullopt);
    engine::log::info("{}: no longer configured: its cursor (event {}) removed", name, seq);
  }
  return std::unique_ptr<webhook_dispatcher>(new webhook_dispatcher(std::move(s)));
}

void webhook_dispatcher::start() {
  auto& s = *impl_;
  if (s.thread.joinable() || s.dests.empty()) return;
  s.saver_timer = std::make_unique<net::steady_timer>(s.io);
  for (auto& d : s.dests) {
    d->wake_reader = std::make_unique<net::steady_timer>(s.io);
    net::co_spawn(s.io, s.reader(*d), net::detached);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, s.settings.concurrency); ++i) {
      d->connections.push_back(std::make_unique<detail::outbound_connection>(d->where, s.policy, s.tls));
      d->sender_timers.push_back(std::make_unique<net::steady_timer>(s.io));
      net::co_spawn(s.io, s.sender(*d, *d->connections.back(), *d->sender_timers.back()), net::detached);
    }
  }
  net::co_spawn(s.io, s.saver(), net::detached);
  s.thread = std::thread([&s] {
    engine::log::name_this_thread("yna-webhooks");
    s.io.run();
  });
}

void webhook_dispatcher::notify() {
  auto& s = *impl_;
  if (s.sleeping.exchange(false)) net::post(s.io, [&s] { s.wake_readers(); });
}

void webhook_dispatcher::stop() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  net::post(s.io, [&s] {
    s.stopping = true;
    s.saver_timer->cancel();
    for (auto& d : s.dests) {
      d->wake_reader->cancel();
      impl::wake_senders(*d);
      for (auto& c : d->connections) c->close();
    }
  });
  s.thread.join();
  for (auto& d : s.dests) s.save(*d);
}

}  // namespace transport
