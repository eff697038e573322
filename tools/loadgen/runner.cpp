#include "tools/loadgen/runner.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "tools/loadgen/probe.hpp"
#include "tools/loadgen/user.hpp"

namespace loadgen {

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Keeps one party's socket read; reopens it (with ?since=, so nothing is missed) when
// the engine closes it while the run goes on.
net::awaitable<void> keep_socket(run_context& ctx, user& u, party& p) {
  while (!ctx.stopping) {
    std::string why;
    co_await p.ws.read_loop([&u] { u.wake.cancel(); }, [&why](std::string w) { why = std::move(w); });
    if (ctx.stopping) break;
    ctx.st.error(0, socket_closed);
    for (;;) {
      net::steady_timer pause(u.strand, std::chrono::milliseconds(100));
      co_await pause.async_wait(tuple_awaitable);
      if (ctx.stopping) co_return;
      if ((co_await p.ws.open(ctx.opts.base_path, ctx.opts.timeout)).empty()) break;
    }
  }
}

// The shared state of a run, alive until every coroutine has ended.
struct session {
  session(const options& o, stats& s, recorder& r) : ctx{o, s, r} {}
  run_context ctx;
  // One io_context per client thread, each run by that thread alone, users spread over
  // them: a user's work never hops threads (no cross-thread wake-ups).
  std::vector<std::unique_ptr<net::io_context>> iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::vector<std::unique_ptr<user>> users;
  std::mutex idle_mu;
  std::deque<user*> idle;  // open loop: users without a call
  std::atomic<std::size_t> loops_running{0};
  std::atomic<std::uint64_t> calls_reserved{0};  // --calls: calls handed out so far
  clk::time_point measure_from, measure_until;
};

net::awaitable<void> closed_loop(session& s, user& u) {
  const options& o = s.ctx.opts;
  while (!s.ctx.stopping) {
    if (o.calls > 0 && s.calls_reserved.fetch_add(1) >= o.calls) break;
    if (!co_await run_call(s.ctx, u, o.mix.pick(u.rng))) {
      net::steady_timer pause(u.strand, std::chrono::milliseconds(50));
      co_await pause.async_wait(tuple_awaitable);
    }
  }
  if (--s.loops_running == 0) s.ctx.stopping = true;
}

// Open loop: every 1/rate seconds a free user starts a call; none free counts as skipped.
net::awaitable<void> dispatcher(session& s) {
  const options& o = s.ctx.opts;
  auto ex = co_await net::this_coro::executor;
  net::steady_timer t(ex);
  const auto interval = std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(1.0 / o.rate));
  const auto t0 = clk::now();
  for (std::uint64_t k = 0; !s.ctx.stopping && (o.calls == 0 || k < o.calls); ++k) {
    const auto due = t0 + k * interval;
    t.expires_at(due);
    co_await t.async_wait(tuple_awaitable);
    if (s.ctx.stopping) break;
    if (clk::now() - due > std::chrono::milliseconds(10) && s.ctx.st.measuring)
      s.ctx.st.open_loop_late.fetch_add(1, std::memory_order_relaxed);
    user* u = nullptr;
    {
      std::lock_guard lk(s.idle_mu);
      if (!s.idle.empty()) {
        u = s.idle.front();
        s.idle.pop_front();
      }
    }
    if (!u) {
      if (s.ctx.st.measuring) s.ctx.st.open_loop_skipped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ++s.loops_running;
    net::co_spawn(u->strand, [&s, u]() -> net::awaitable<void> {
      co_await run_call(s.ctx, *u, s.ctx.opts.mix.pick(u->rng));
      {
        std::lock_guard lk(s.idle_mu);
        s.idle.push_back(u);
      }
      --s.loops_running;
    }, net::detached);
  }
  // Let the calls in flight finish, then stop.
  while (s.loops_running > 0) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(tuple_awaitable);
  }
  s.ctx.stopping = true;
}

}  // namespace

run_result run(const options& o, const std::vector<user_identity>& ids, stats& st, recorder& rec) {
  run_result r;
  session s(o, st, rec);
  const tcp::endpoint server(net::ip::make_address(o.host), o.port);
  const unsigned n_threads = std::max(1u, o.threads);
  for (unsigned i = 0; i < n_threads; ++i) s.iocs.push_back(std::make_unique<net::io_context>(1));
  for (std::size_t i = 0; i < ids.size(); ++i)
    s.users.push_back(std::make_unique<user>(*s.iocs[i % n_threads], server, ids[i], o, i));
  auto run_all = [&] {
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < n_threads; ++i) threads.emplace_back([&, i] { s.iocs[i]->run(); });
    s.iocs[0]->run();
    for (auto& t : threads) t.join();
    for (auto& ioc : s.iocs) ioc->restart();
  };

  // Open every socket before the first call: a refused upgrade is a setup failure.
  std::atomic<std::size_t> opened{0};
  std::mutex err_mu;
  if (o.websockets) {
    for (auto& u : s.users)
      for (party* p : {&u->mo, &u->mt})
        net::co_spawn(u->strand, [&, p]() -> net::awaitable<void> {
          auto why = co_await p->ws.open(o.base_path, o.timeout);
          if (!why.empty()) {
            std::lock_guard lk(err_mu);
            if (r.setup_error.empty()) r.setup_error = "notification socket of " + p->id.number + ": " + why;
          }
          ++opened;
        }, net::detached);
    run_all();
    if (!r.setup_error.empty()) {
      r.setup_ok = false;
      return r;
    }
  }

  const auto t_start = clk::now();
  s.measure_from = t_start + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.warmup_s));
  st.measuring = o.warmup_s <= 0;
  const bool timed = o.calls == 0;
  s.measure_until = s.measure_from + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(o.duration_s));

  for (auto& u : s.users) {
    if (o.websockets)
      for (party* p : {&u->mo, &u->mt}) net::co_spawn(u->strand, keep_socket(s.ctx, *u, *p), net::detached);
    if (o.rate > 0) {
      s.idle.push_back(u.get());
    } else {
      ++s.loops_running;
      net::co_spawn(u->strand, closed_loop(s, *u), net::detached);
    }
  }
  for (auto& ioc : s.iocs) s.guards.push_back(net::make_work_guard(*ioc));
  if (o.rate > 0) net::co_spawn(net::make_strand(*s.iocs[0]), dispatcher(s), net::detached);

  // Clock: warm-up end, measured window end, progress lines, record flushes, and at the
  // end closing the sockets so that the readers return.
  double cpu0 = 0, engine0 = 0;
  auto window_open = [&] {
    st.measuring = true;
    cpu0 = process_cpu_s();
    engine0 = o.engine_pid ? engine_cpu_seconds(o.engine_pid) : -1;
  };
  auto window_close = [&] {
    r.measured_s = std::chrono::duration<double>(clk::now() - s.measure_from).count();
    r.window_requests = st.requests.load();
    r.window_calls = st.calls_completed.load();
    r.client_cpu_s = process_cpu_s() - cpu0;
    if (o.engine_pid && engine0 >= 0) r.engine_cpu_s = engine_cpu_seconds(o.engine_pid) - engine0;
  };
  if (st.measuring) window_open();
  bool closed_window = false;
  net::co_spawn(*s.iocs[0], [&]() -> net::awaitable<void> {
    net::steady_timer t(co_await net::this_coro::executor);
    std::uint64_t last_requests = 0;
    auto last = clk::now();
    const bool tty = isatty(STDERR_FILENO);
    while (!s.ctx.stopping) {
      t.expires_after(std::chrono::milliseconds(100));
      co_await t.async_wait(tuple_awaitable);
      const auto now = clk::now();
      if (!st.measuring && now >= s.measure_from) window_open();
      if (timed && !closed_window && now >= s.measure_until) {
        window_close();
        closed_window = true;
        s.ctx.stopping = true;  // calls in flight finish; no new ones
      }
      if (now - last < std::chrono::seconds(1)) continue;
      rec.flush();
      const std::uint64_t req = st.total_requests.load();
      if (o.progress)
        std::fprintf(stderr, "%s[%6.1f s] %s requests %llu (%.0f/s), calls %llu, in flight %llu, errors %llu%s",
                     tty ? "\r" : "", std::chrono::duration<double>(now - t_start).count(),
                     st.measuring ? "" : "warm-up ", static_cast<unsigned long long>(req),
                     static_cast<double>(req - last_requests) / std::chrono::duration<double>(now - last).count(),
                     static_cast<unsigned long long>(st.total_calls.load()),
                     static_cast<unsigned long long>(st.in_flight.load()),
                     static_cast<unsigned long long>(st.total_errors.load()), tty ? "   " : "\n");
      last_requests = req;
      last = now;
    }
    // Wait for the calls in flight, then close every socket.
    while (st.in_flight.load() > 0 || s.loops_running.load() > 0) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(tuple_awaitable);
    }
    if (!closed_window) window_close();
    if (o.progress && tty) std::fprintf(stderr, "\n");
    for (auto& u : s.users)
      net::post(u->strand, [&u] {
        u->mo.ws.close();
        u->mt.ws.close();
        u->mo.http.close();
        u->mt.http.close();
        u->wake.cancel();
      });
    for (auto& g : s.guards) g.reset();
  }, net::detached);

  run_all();
  rec.flush();
  return r;
}

}  // namespace loadgen
