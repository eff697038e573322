// The dispatcher's thread (transport/dispatch.hpp). Per plan, on one io_context: a
// reader coroutine that tops the plan's delivery_queue up from the log, `concurrency`
// sender coroutines that each keep a connection per origin alive and send the queue's due
// deliveries, and one saver for all that writes the cursors and the lag gauges every
// 200 ms.
#include "transport/dispatch.hpp"

#include <map>

#include <algorithm>
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

#include "engine/clock.hpp"
#include "engine/log.hpp"
#include "transport/detail/outbound.hpp"

namespace transport {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr std::size_t read_chunk = 256;  // events read from the log at once
// How often a moved cursor is written (a Put without a sync: cheap). What a crash loses
// of it is delivered again.
constexpr milliseconds save_every{200};
// After a delivery, the cursor is written at once unless it was written this recently.
constexpr milliseconds save_soonest{20};

engine::epoch_ms wall_ms() { return engine::system_clock{}.now(); }

}  // namespace

struct log_dispatcher::impl {
  // A sender's kept-alive connections, one per origin (scheme, host, port).
  using connections = std::map<std::string, std::unique_ptr<detail::outbound_connection>>;
  static constexpr std::size_t max_origins_per_sender = 16;

  struct destination {
    std::unique_ptr<dispatch_plan> plan;
    delivery_queue queue;
    engine::event_seq saved = 0;
    steady::time_point saved_at{};
    // One timer per waiter: setting a timer's expiry cancels every wait on it, so senders
    // sharing one would wake each other without end.
    std::unique_ptr<net::steady_timer> wake_reader;
    std::vector<std::unique_ptr<net::steady_timer>> sender_timers;
    std::vector<std::unique_ptr<connections>> senders;
    bool failing = false;
    engine::counter *delivered = nullptr, *retried = nullptr, *dead = nullptr;
    engine::gauge *pending = nullptr, *lag_events = nullptr, *lag_ms = nullptr;
    engine::histogram* latency = nullptr;
  };

  engine::delivery_source& log;
  dispatcher_settings settings;
  detail::outbound_policy policy;
  std::shared_ptr<net::ssl::context> tls;
  net::io_context io{1};
  std::vector<std::unique_ptr<destination>> dests;
  std::unique_ptr<net::steady_timer> saver_timer;
  std::thread thread;
  std::atomic<bool> sleeping{false};
  bool stopping = false;  // io thread only
  std::mt19937_64 rng{std::random_device{}()};

  impl(engine::delivery_source& l, dispatcher_settings s) : log(l), settings(std::move(s)) {
    policy.allow = settings.outbound_allow;
  }

  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

  void save(destination& d) {
    const auto c = d.queue.cursor();
    if (c == d.saved) return;
    d.saved_at = steady::now();
    if (log.set_cursor(d.plan->cursor_name(), c)) d.saved = c;
  }

  void gauges(destination& d) {
    d.pending->set(static_cast<std::int64_t>(d.queue.pending()));
    const auto ack = log.acknowledged_seq();
    // Past the cursor as saved (what a restart resumes from), not the one in memory.
    d.lag_events->set(ack > d.saved ? static_cast<std::int64_t>(ack - d.saved) : 0);
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
      if (auto skip = d.plan->owes_nothing_up_to(); skip && *skip > d.queue.read_upto())
        d.queue.add(*skip, 0, {});  // nothing owed there: not even read
      auto events = log.events_after(d.queue.read_upto(), read_chunk);
      if (events.empty()) {
        sleeping.store(true);
        if (log.acknowledged_seq() > d.queue.read_upto()) continue;  // acknowledged meanwhile
        d.wake_reader->expires_after(std::chrono::seconds(1));
        co_await d.wake_reader->async_wait(nothrow);
        continue;
      }
      std::vector<planned_delivery> owed;
      for (const auto& e : events) {
        owed.clear();
        d.plan->plan(e, owed);
        d.queue.add(e.seq, e.time, std::move(owed));
      }
      wake_senders(d);
    }
  }

  static void wake_senders(destination& d) {
    for (auto& t : d.sender_timers) t->cancel();
  }

  // The kept-alive connection to a URL's origin, made when missing.
  detail::outbound_connection& connection_for(connections& conns, const outbound_url& u) {
    const std::string origin = (u.tls ? "https://" : "http://") + u.host + ":" + std::to_string(u.port);
    auto it = conns.find(origin);
    if (it != conns.end()) return *it->second;
    if (conns.size() >= max_origins_per_sender) conns.clear();  // many gateways: start over
    return *conns.emplace(origin, std::make_unique<detail::outbound_connection>(u, policy, tls)).first->second;
  }

  // Sends the queue's due deliveries over kept-alive connections.
  net::awaitable<void> sender(destination& d, connections& conns, net::steady_timer& wake) {
    while (!stopping) {
      const auto now = steady::now();
      delivery_queue::delivery* job = d.queue.take(now);
      if (!job) {
        const auto due = d.queue.next_due();
        wake.expires_at(due ? *due : now + std::chrono::hours(1));
        co_await wake.async_wait(nothrow);
        continue;
      }
      const detail::outbound_headers headers = d.plan->headers(*job);
      schemas::result<detail::outbound_response, std::string> r = schemas::failure{std::string()};
      auto where = parse_outbound_url(job->url);
      if (!where)
        r = schemas::failure{where.error()};
      else if (!policy.host_allowed(where->host))
        r = schemas::failure{"its host " + where->host + " is not in --outbound-allow"};
      else
        r = co_await connection_for(conns, *where).post(headers, job->body, settings.timeout);
      if (stopping) co_return;  // the queue is abandoned: what was in flight comes again
      if (r && r->status >= 200 && r->status < 300) {
        d.latency->observe(static_cast<double>(std::max<engine::epoch_ms>(0, wall_ms() - job->committed)) / 1000.0);
        d.plan->delivered(*job, r->body);
        d.queue.delivered(job);
        d.delivered->inc();
        if (steady::now() - d.saved_at >= save_soonest) save(d);
        if (d.failing) {
          d.failing = false;
          engine::log::info("{}: delivering again", d.plan->label());
        }
      } else {
        const std::string why = r ? "answered " + std::to_string(r->status) : r.error();
        const std::string id = job->id;
        const int failures = job->failures + 1;
        if (d.queue.failed(job, steady::now(), wall_ms(), d.plan->retry(), unit())) {
          d.retried->inc();
          if (!d.failing) {
            d.failing = true;
            engine::log::warn("{}: delivery {} failed ({}); retrying with backoff", d.plan->label(), id, why);
          }
        } else {
          d.dead->inc();
          engine::log::warn("{}: delivery {} is dead after {} attempts (last: {}): its event is older than the "
                            "retry age",
                            d.plan->label(), id, failures, why);
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

log_dispatcher::log_dispatcher(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

log_dispatcher::~log_dispatcher() { stop(); }

schemas::result<std::unique_ptr<log_dispatcher>, std::string> log_dispatcher::create(
    engine::delivery_source& log, std::vector<std::unique_ptr<dispatch_plan>> plans, dispatcher_settings settings,
    const std::vector<std::string>& owned_prefixes, engine::registry& metrics) {
  auto s = std::make_unique<impl>(log, std::move(settings));
  try {
    s->tls = detail::make_client_tls(s->settings.outbound_ca);
  } catch (const std::exception& e) {
    return schemas::failure{std::string(e.what())};
  }
  auto cursors = log.cursors();
  const auto head = log.acknowledged_seq();
  for (auto& plan : plans) {
    auto d = std::make_unique<impl::destination>();
    d->plan = std::move(plan);
    const std::string& name = d->plan->cursor_name();
    const std::string& label = d->plan->label();
    for (const auto& other : s->dests)
      if (other->plan->cursor_name() == name) return schemas::failure{label + " is given twice"};
    engine::event_seq start = head;
    if (auto it = cursors.find(name); it != cursors.end()) {
      start = it->second;
      cursors.erase(it);
      engine::log::info("{}: delivering from event {} (its cursor)", label, start + 1);
    } else {
      if (!log.set_cursor(name, start)) return schemas::failure{label + ": cannot save its cursor"};
      engine::log::info("{}: new, owed what comes after event {}", label, start);
    }
    d->queue = delivery_queue(start);
    d->saved = start;
    const std::string l = "destination=\"" + label + "\"";
    d->delivered = &metrics.get_counter("yna_dispatch_delivered_total", "Deliveries (webhooks, pushes) answered 2xx", l);
    d->retried = &metrics.get_counter("yna_dispatch_retries_total", "Delivery attempts that failed and will be retried", l);
    d->dead = &metrics.get_counter("yna_dispatch_dead_total", "Deliveries given up after their retry age (logged)", l);
    d->pending = &metrics.get_gauge("yna_dispatch_pending", "Deliveries read from the log, not yet done", l);
    d->lag_events = &metrics.get_gauge("yna_dispatch_lag_events", "Acknowledged events past the saved cursor", l);
    d->lag_ms = &metrics.get_gauge("yna_dispatch_lag_milliseconds",
                                   "Age of the oldest event with a delivery not done (0: none)", l);
    d->latency = &metrics.get_histogram("yna_dispatch_delivery_seconds", "From an event's time to its 2xx answer",
                                        engine::latency_buckets_seconds(), l);
    s->dests.push_back(std::move(d));
  }
  for (const auto& [name, seq] : cursors) {
    // (A lambda capturing a structured binding is C++20 that clang 14 refuses.)
    const std::string& cursor = name;
    const bool ours = std::any_of(owned_prefixes.begin(), owned_prefixes.end(),
                                  [&](const std::string& p) { return cursor.starts_with(p); });
    if (!ours) continue;
    log.set_cursor(name, std::nullopt);
    engine::log::info("{}: no longer configured: its cursor (event {}) removed", name, seq);
  }
  return std::unique_ptr<log_dispatcher>(new log_dispatcher(std::move(s)));
}

void log_dispatcher::start() {
  auto& s = *impl_;
  if (s.thread.joinable() || s.dests.empty()) return;
  s.saver_timer = std::make_unique<net::steady_timer>(s.io);
  for (auto& d : s.dests) {
    d->wake_reader = std::make_unique<net::steady_timer>(s.io);
    net::co_spawn(s.io, s.reader(*d), net::detached);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, s.settings.concurrency); ++i) {
      d->senders.push_back(std::make_unique<impl::connections>());
      d->sender_timers.push_back(std::make_unique<net::steady_timer>(s.io));
      net::co_spawn(s.io, s.sender(*d, *d->senders.back(), *d->sender_timers.back()), net::detached);
    }
  }
  net::co_spawn(s.io, s.saver(), net::detached);
  s.thread = std::thread([&s] {
    engine::log::name_this_thread("yna-dispatch");
    s.io.run();
  });
}

void log_dispatcher::notify() {
  auto& s = *impl_;
  if (s.sleeping.exchange(false)) net::post(s.io, [&s] { s.wake_readers(); });
}

void log_dispatcher::stop() {
  auto& s = *impl_;
  if (!s.thread.joinable()) return;
  net::post(s.io, [&s] {
    s.stopping = true;
    s.saver_timer->cancel();
    for (auto& d : s.dests) {
      d->wake_reader->cancel();
      impl::wake_senders(*d);
      for (auto& conns : d->senders)
        for (auto& [origin, c] : *conns) c->close();
    }
  });
  s.thread.join();
  for (auto& d : s.dests) s.save(*d);
}

}  // namespace transport
