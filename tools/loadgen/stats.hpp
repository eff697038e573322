#pragma once
// What a run measures (stats) and the client-side record of every answer (recorder).
// Both are shared by every virtual user: any thread may write them concurrently.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/loadgen/flow.hpp"
#include "tools/loadgen/histogram.hpp"

namespace loadgen {

// Loadgen-side failure names, reported next to the engine's reasonCodes.
inline constexpr std::string_view connection_error = "CONNECTION_ERROR";      // connect/read/write failed
inline constexpr std::string_view request_timeout = "CLIENT_TIMEOUT";         // no answer within --timeout
inline constexpr std::string_view wrong_status = "UNEXPECTED_STATUS";         // an answer the flow did not expect, no reasonCode
inline constexpr std::string_view notification_missing = "NOTIFICATION_MISSING";
inline constexpr std::string_view socket_closed = "WEBSOCKET_CLOSED";

using counter = std::atomic<std::uint64_t>;

struct stats {
  // False during --warmup: answers still flow, nothing below but the totals counts.
  std::atomic<bool> measuring{true};

  std::array<histogram, endpoint_count> latency;         // request written → answer read
  std::array<counter, endpoint_count> failures{};        // answers or non-answers the flow did not expect
  histogram notify_latency;                              // causing answer read → frame read (0 when first)
  counter requests{0};            // answers read (any status)
  counter calls_started{0}, calls_completed{0}, calls_failed{0};
  counter notifications_expected{0}, notifications_received{0}, notifications_missing{0};
  counter notifications_early{0};  // frames read before the causing request's answer
  counter unexpected_frames{0};    // frames no step asked for
  counter frames_for_open_calls{0};  // frames about calls left open (e.g. the engine's timers)
  counter start_retries{0};
  counter pop_signed{0}, pop_sign_ns{0};
  counter open_loop_skipped{0}, open_loop_late{0};  // no free user at the due time / started > 10 ms late
  // --overload: 503 SERVICE_UNAVAILABLE answers (refused for load), apart from `latency`.
  histogram refused_latency;
  counter refused{0}, calls_refused{0};

  // For the progress line, whatever `measuring` says.
  counter total_requests{0}, total_calls{0}, total_errors{0}, in_flight{0};

  // Counts one failure under (HTTP status or 0, reasonCode or a loadgen-side name).
  void error(int status, std::string_view code);
  std::vector<std::pair<std::pair<int, std::string>, std::uint64_t>> errors() const;
  std::uint64_t error_total() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<int, std::string>, std::uint64_t> errors_;
};

// The client-side record (--record FILE): one JSON line per answer read, or per request
// that got none, so a crash test can compare what was acknowledged with the log:
//   {"t":EPOCH_MS,"callId":"…","endpoint":"connected","by":"MT","status":200,
//    "txn":"<x-transaction-id of the answer>","clientCorrelator":"…" (start),
//    "reasonCode":"…" (errors),"error":"…" (status 0: no answer)}
// Buffered; flushed every second by the runner and at the end.
class recorder {
 public:
  struct entry {
    std::string_view call_id, endpoint, by, txn, client_correlator, reason_code, error;
    int status = 0;
  };
  // Empty path: a recorder that records nothing. Throws std::runtime_error when the file
  // cannot be created.
  explicit recorder(const std::string& path);
  ~recorder();
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  bool enabled() const noexcept { return file_ != nullptr; }
  void write(const entry& e);
  void flush();
  std::uint64_t lines() const noexcept { return lines_.load(std::memory_order_relaxed); }

 private:
  std::FILE* file_ = nullptr;
  std::mutex mu_;
  std::string buf_;
  std::atomic<std::uint64_t> lines_{0};
};

}  // namespace loadgen
