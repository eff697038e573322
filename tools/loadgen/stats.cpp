#include "tools/loadgen/stats.hpp"

#include <chrono>
#include <stdexcept>

#include "schemas/json_writer.hpp"

namespace loadgen {

void stats::error(int status, std::string_view code) {
  total_errors.fetch_add(1, std::memory_order_relaxed);
  if (!measuring.load(std::memory_order_relaxed)) return;
  std::lock_guard lk(mu_);
  ++errors_[{status, std::string(code)}];
}

std::vector<std::pair<std::pair<int, std::string>, std::uint64_t>> stats::errors() const {
  std::lock_guard lk(mu_);
  return {errors_.begin(), errors_.end()};
}

std::uint64_t stats::error_total() const {
  std::lock_guard lk(mu_);
  std::uint64_t n = 0;
  for (const auto& [k, v] : errors_) n += v;
  return n;
}

recorder::recorder(const std::string& path) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw std::runtime_error("cannot create the record file " + path);
}

recorder::~recorder() {
  if (!file_) return;
  flush();
  std::fclose(file_);
}

void recorder::write(const entry& e) {
  if (!file_) return;
  schemas::json_writer w(256);
  w.begin_object();
  w.field("t", static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count()));
  if (!e.call_id.empty()) w.field("callId", e.call_id);
  w.field("endpoint", e.endpoint).field("by", e.by).field("status", e.status);
  if (!e.txn.empty()) w.field("txn", e.txn);
  if (!e.client_correlator.empty()) w.field("clientCorrelator", e.client_correlator);
  if (!e.reason_code.empty()) w.field("reasonCode", e.reason_code);
  if (!e.error.empty()) w.field("error", e.error);
  w.end_object();
  std::lock_guard lk(mu_);
  buf_ += w.str();
  buf_ += '\n';
  lines_.fetch_add(1, std::memory_order_relaxed);
  // Written through at once: the crash test kills the loadgen with the engine, and the
  // record must hold every answer the client saw before that (one write per answer is
  // small next to signing its PoP token).
  std::fwrite(buf_.data(), 1, buf_.size(), file_);
  std::fflush(file_);
  buf_.clear();
}

void recorder::flush() {
  if (!file_) return;
  std::lock_guard lk(mu_);
  std::fwrite(buf_.data(), 1, buf_.size(), file_);
  buf_.clear();
  std::fflush(file_);
}

}  // namespace loadgen
