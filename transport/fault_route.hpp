#pragma once
// POST /_faults of `yna-engine --fault-injection`: the integration tests' handle on the
// running engine's storage faults (issue 8). Compiled into the yna-engine binary only,
// which composes transport and storage; transport itself never sees storage.
//
// Body (JSON, every member optional):
//   {"wal": "append_no_space" | "append_io_error" | "sync_io_error" | "none",
//    "count": N,                         // times the WAL fault fires (0 or absent: until disarmed)
//    "append": "io_error" | "no_space"}  // the next append fails before RocksDB (event_log seam)
// Answer: {"wal":"…","count":N,"injected":K} with K the WAL faults injected so far.
#include <string>
#include <string_view>

#include "schemas/result.hpp"
#include "storage/event_log.hpp"
#include "storage/fault_env.hpp"

namespace transport {

schemas::result<std::string, std::string> apply_faults(std::string_view body, storage::event_log& log,
                                                        storage::fault_env& env);

}  // namespace transport
