#pragma once
// fault_env: a RocksDB Env whose WAL files fail on demand, the fault seam of the log
// (style §9, in the spirit of RocksDB's FaultInjectionTestFS and Redpanda's
// persistence fault injection). Only files ending in ".log" (the WAL) are affected.
// Used by the storage tests and, behind `yna-engine --fault-injection`, by the
// integration tests that make the running engine's disk fail.
//
// Lifetime: must outlive every event_log opened on env(). arm() from any thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace rocksdb {
class Env;
}

namespace storage {

enum class wal_fault { none, append_no_space, append_io_error, sync_io_error };
std::string_view to_string(wal_fault f) noexcept;  // "none", "append_no_space", …
std::optional<wal_fault> parse_wal_fault(std::string_view s) noexcept;

class fault_env {
 public:
  fault_env();
  ~fault_env();
  fault_env(const fault_env&) = delete;
  fault_env& operator=(const fault_env&) = delete;

  rocksdb::Env* env() const noexcept;
  // WAL operations of this kind fail from now on: the next `count` of them, or every one
  // until the next arm() when count is 0. arm(wal_fault::none) disarms.
  void arm(wal_fault f, std::uint32_t count = 0);
  // Every WAL sync takes this much longer from now on (a slow disk; 0: no delay). The
  // overload test uses it to give the engine a capacity a client can exceed tenfold.
  void set_sync_delay_ms(std::uint32_t ms);
  std::uint32_t sync_delay_ms() const noexcept;
  // Faults injected so far.
  std::uint64_t injected() const noexcept;
  // WAL syncs (Sync and Fsync calls on WAL files) so far, failed ones included.
  std::uint64_t wal_syncs() const noexcept;
  // Successful appends to WAL files so far (a batch written to the log is at least one).
  std::uint64_t wal_appends() const noexcept;
  // While held, every WAL sync that starts (and is counted in wal_syncs) waits until
  // hold_syncs(false): tests make "the next batch is written while this sync runs" a
  // state they wait for, not a delay they hope is long enough.
  void hold_syncs(bool hold);

  struct state;

 private:
  std::shared_ptr<state> state_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace storage
