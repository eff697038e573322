#pragma once
// The end-of-run report, for people (text) and machines (--json). Field names of the
// JSON are stable: tools/bench/run-all.sh and the tests read them.
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "tools/loadgen/probe.hpp"
#include "tools/loadgen/runner.hpp"
#include "tools/loadgen/stats.hpp"

namespace loadgen {

struct engine_figures {
  int pid = 0;
  long rss_start_kib = -1, rss_end_kib = -1;
  long rss_peak_kib = -1;  // VmHWM: the engine's peak resident memory since it started
  std::optional<double> active_calls_start, active_calls_end;  // yna_active_calls
};

struct report_input {
  const options& opts;
  const stats& st;
  const run_result& run;
  engine_figures engine;
  std::optional<idle_socket_cost> idle;
  std::string record_file;
  std::uint64_t record_lines = 0;
};

// True when the run met every expectation: no error of any kind, no missing
// notification, no unexpected frame. (The exit code: 0 when true, 1 otherwise.)
bool passed(const report_input& in);

void print_text(const report_input& in, std::FILE* out);
std::string to_json(const report_input& in);

}  // namespace loadgen
