#pragma once
// A virtual user (runner.cpp's unit of concurrency) and the call it drives (call.cpp).
// Everything of one user runs on its strand.
#include <atomic>
#include <random>
#include <string>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "tools/loadgen/client.hpp"
#include "tools/loadgen/runner.hpp"

namespace loadgen {

struct party {
  party(net::any_io_executor ex, tcp::endpoint server, const party_identity& who, const options& o)
      : id(who), authorization("Bearer " + who.token), http(ex, server, o.timeout), ws(ex, server, who.token) {}
  const party_identity& id;
  std::string authorization;
  http_conn http;
  notification_socket ws;
};

// Shared by every user of a run.
struct run_context {
  const options& opts;
  stats& st;
  recorder& rec;
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> next_call{0};
};

struct user {
  user(net::io_context& ioc, tcp::endpoint server, const user_identity& who, const options& o, std::size_t index)
      : strand(net::make_strand(ioc)),
        mo(strand, server, who.mo, o),
        mt(strand, server, who.mt, o),
        wake(strand),
        rng(index * 0x9E3779B97F4A7C15ull + 1) {}
  net::strand<net::io_context::executor_type> strand;
  party mo, mt;
  net::steady_timer wake;  // cancelled when a frame arrives, so a waiting step looks again
  std::mt19937_64 rng;
  // Calls this user did not see end (the start flow, failed calls): the engine may still
  // notify about them (its timers, a hang-up), so their frames are not unexpected.
  std::unordered_set<std::string> left_open;
};

// Runs one call of flow `k` for `u`, counting everything into ctx.st. On `u.strand`.
// Returns false when the call failed on a connection error (the caller backs off).
net::awaitable<bool> run_call(run_context& ctx, user& u, flow_kind k);

}  // namespace loadgen
