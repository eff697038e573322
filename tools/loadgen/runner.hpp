#pragma once
// The run: virtual users, each a caller/callee pair with a token, an HTTP connection and
// a notification WebSocket per party, driving call flows closed-loop (every user starts
// its next call when the last one ends) or open-loop (calls started at a fixed rate by
// whichever user is free), until the duration or the call count is reached.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "schemas/jose.hpp"
#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/stats.hpp"

namespace loadgen {

enum class pop_mode { off, per_request };

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string base_path;
  unsigned concurrency = 16;   // virtual users (caller/callee pairs) = calls in flight at most
  double rate = 0;             // calls started per second (open loop); 0: closed loop
  double duration_s = 10;      // measured time (after the warm-up); ignored when calls > 0
  double warmup_s = 0;
  std::uint64_t calls = 0;     // stop after this many calls (0: run for duration_s)
  flow_mix mix;
  pop_mode pop = pop_mode::per_request;
  unsigned threads = 1;
  std::chrono::milliseconds timeout{5000};         // per request
  std::chrono::milliseconds notify_timeout{2000};  // per notification, from the causing answer
  bool websockets = true;      // false: no sockets, notifications not checked
  bool retry_start = false;    // resend /start (same clientCorrelator) after a connection failure
  bool overload = false;       // 503 SERVICE_UNAVAILABLE is a refusal, counted apart, not a failure
  std::chrono::milliseconds retry_for{30000};
  bool progress = true;
  int engine_pid = 0;          // for CPU per request (read from /proc)
  std::string run_id;          // in every clientCorrelator
};

// One party of a virtual user, its credentials made beforehand.
struct party_identity {
  std::string number;
  std::string token;      // access token for this number only
  std::string device_id;
  const schemas::jose::private_key* key = nullptr;  // the token's cnf key (PoP)
};
struct user_identity {
  party_identity mo, mt;
};

struct run_result {
  bool setup_ok = true;
  std::string setup_error;
  double measured_s = 0;                 // the window the rates below are taken over
  std::uint64_t window_requests = 0;     // answers read within it
  std::uint64_t window_calls = 0;        // calls completed within it
  double engine_cpu_s = -1;              // engine user+sys within it (-1: no --engine-pid)
  double client_cpu_s = 0;               // this process, within it
};

// Runs the whole thing on `options.threads` threads; returns when every call has
// finished. Setup failures (a socket that cannot be opened) end it before any call.
run_result run(const options& o, const std::vector<user_identity>& users, stats& s, recorder& rec);

}  // namespace loadgen
