#pragma once
// What yna-loadgen reads about the engine besides its answers: the process's CPU time
// and resident memory (/proc, same machine only), one Prometheus series from /metrics,
// and the memory an idle notification socket costs. Blocking; outside the run.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace loadgen {

// user+sys seconds of process `pid`; -1 when it cannot be read.
double engine_cpu_seconds(int pid);
// VmRSS of `pid` in KiB; -1 when it cannot be read.
// A memory line of /proc/PID/status in KiB (VmRSS: now; VmHWM: the peak), -1 if unreadable.
// Raises this process's open-file limit to its hard limit (users × 4 sockets).
void raise_fd_limit();
long engine_rss_kib(int pid, std::string_view field = "VmRSS:");
// The value of `series` (written as exposed, e.g. `yna_active_calls`) in
// GET <base_path>/metrics; nullopt on any failure.
std::optional<double> fetch_metric(const std::string& host, std::uint16_t port, const std::string& base_path,
                                   const std::string& series);

struct idle_socket_cost {
  std::size_t opened = 0;
  long rss_before_kib = -1, rss_after_kib = -1;
  std::string error;  // why opening stopped early, if it did
};
// Opens `n` notification sockets with `token` that never receive anything, waits a
// second, and reads the engine's RSS before and after; closes them again.
idle_socket_cost measure_idle_sockets(const std::string& host, std::uint16_t port, const std::string& base_path,
                                      const std::string& token, std::size_t n, int pid);

}  // namespace loadgen
