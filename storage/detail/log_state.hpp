#pragma once
// Everything an event_log owns. Shared by event_log.cpp (open, reads), writer.cpp
// (the writer thread) and verify.cpp. Which thread may touch what is written on
// each group of members.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "engine/event_store.hpp"
#include "storage/detail/rocks.hpp"
#include "storage/event_log.hpp"

namespace storage::detail {

struct append_job {
  std::vector<engine::event>* batch;  // owned by the caller until done
  const std::vector<engine::call_change>* calls;  // ditto; null: events only (state not advanced)
  const engine::side_changes* side;  // ditto; may be null
  engine::append_done done;
  // Set instead of the above: other work that writes to the log (an archive's removal,
  // run_on_writer), so that this thread stays the only one that writes.
  std::function<void()> task = {};
};
using job = append_job;

// A batch the writer thread has handed on (written without a sync, or failed), waiting
// in the sync pipeline to be answered in its turn.
struct unsynced_batch {
  engine::append_done done;
  engine::event_seq last = 0;  // its last event's seq (0: nothing written)
  std::string head_hash;       // the chain head after it
  std::optional<engine::store_error> failed;  // failed on the writer thread: answered so, unsynced
  std::size_t events = 0;
  std::chrono::steady_clock::time_point started;
  sync_observer observer;
};

enum class instance_kind : std::uint8_t { writer, secondary, read_only };

struct log_state {
  ~log_state();  // closes RocksDB; the writer thread must be stopped already

  // Set at open, then constant.
  log_options options;
  instance_kind kind = instance_kind::writer;
  memory_budget budget;  // the block cache and the memtables' budget, kept across reopens

  // The open RocksDB. Constant on readers. On the writer instance the writer thread
  // may close and reopen it after an error RocksDB cannot resume from (and leave it
  // null when the reopen fails): it does so under a unique lock of db_mu, so other
  // threads hold a shared lock while they use db or cf. The writer thread itself
  // needs no lock to use them.
  mutable std::shared_mutex db_mu;
  rocksdb::DB* db = nullptr;
  std::array<rocksdb::ColumnFamilyHandle*, cf_count> cf{};

  // Any thread.
  // Writer instance: the last acknowledged seq (its batch synced, or written without
  // --sync). Readers in this process see nothing past it.
  std::atomic<engine::event_seq> last_seq{0};
  mutable std::mutex catch_up_mu;              // one TryCatchUpWithPrimary at a time

  // The handoff to the writer thread, under mu.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<job> queue;
  bool stopping = false;
  std::optional<engine::store_error> fail_next;
  sync_observer observer;
  std::thread writer;

  // The sync pipeline (writer instance with options.sync): the writer thread writes each
  // batch without a sync and queues it in `unsynced`; the syncer thread takes what is
  // queued, syncs the WAL (so every batch it took was written before the sync started),
  // then answers them in order. So the next batch is encoded and written while the last
  // one syncs. A failed sync fails every batch not yet answered; the writer then rolls
  // back to the last acknowledged batch and recovers (reopen, a new WAL: a failed sync is
  // never retried on the same file) before it writes again. Under sync_mu.
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  std::deque<unsynced_batch> unsynced;
  bool syncing = false;        // the syncer is answering batches it took
  bool sync_stopping = false;
  std::optional<engine::store_error> sync_failed;  // until the writer has rolled back
  std::string synced_hash;     // the chain head of the last acknowledged batch
  std::thread syncer;

  // Writer thread only (and open(), before the thread starts).
  std::string head_hash;                             // hex sha256 of the last written record
  engine::event_seq written_seq = 0;                 // the last written seq (acknowledged or not)
  // After a failure: batches numbered past the failed one (decided before the reactor
  // heard of it) fail with it, until one continues from the last acknowledged seq.
  bool discarding = false;
  bool recovery_needed = false;                      // a write failed: recover before the next one
  // Reused by every append (cleared, its buffer kept): a batch's write is built without
  // growing a fresh buffer from nothing each time.
  rocksdb::WriteBatch write_buffer;
  std::string key_buffer;
  std::string scratch_id;  // ids_of's made id (writer thread)
  engine::store_error failed_with = engine::store_error::io_error;  // how, while recovery_needed

  void warn(std::string_view what) const;
  bool is_reader() const noexcept { return kind != instance_kind::writer; }
};

// event_log.cpp. Opens RocksDB for writing (log_options.dir) into s.db and s.cf.
rocksdb::Status open_writer_db(log_state& s);
// Destroys the handles and closes s.db; s.db is null afterwards.
void close_db(log_state& s);
// Puts the handles RocksDB returned, in cf_descriptors() order, into s.cf.
void adopt_handles(log_state& s, const std::vector<rocksdb::ColumnFamilyHandle*>& handles);

// event_log.cpp. What every read holds while it uses db: a shared lock of db_mu.
// It then checks the log is open and, on a secondary, catches up with the writer;
// `ready` says whether the read may go on.
struct read_guard {
  explicit read_guard(const log_state& s);
  std::shared_lock<std::shared_mutex> lock;
  schemas::status<read_error> ready;
  // The last seq a read may show: nothing the writer has not acknowledged. On the writer
  // instance its last acknowledged seq (a batch is visible in RocksDB before its sync);
  // on a secondary the writer's durable mark (durable_key; none in a log written before
  // it); read-only (no writer running): everything.
  engine::event_seq visible = std::numeric_limits<engine::event_seq>::max();
};

// writer.cpp
void start_writer(log_state& s);
void stop_writer(log_state& s);
// Runs `fn` on the writer thread, after everything handed over before it, and waits for
// it. False (fn not run) when the log is closing. The caller must not hold a read_guard:
// the writer thread may need db_mu exclusively to recover.
bool run_on_writer(log_state& s, const std::function<void()>& fn);
// The same without waiting for it. False (fn dropped) when the log is closing.
bool post_to_writer(log_state& s, std::function<void()> fn);
// Writer thread: puts (or, nullopt, deletes) a delivery cursor's key in meta.
void write_cursor(log_state& s, const std::string& key, std::optional<engine::event_seq> seq);
// Writer thread, before anything that writes: after a failed sync (or write), waits for
// the syncer to answer what it holds, rolls the writer back to the last acknowledged
// batch and recovers. False when the log cannot be written (s.failed_with says why).
bool ready_to_write(log_state& s);

// recovery.cpp. Writer thread, after a failed write: brings RocksDB back to
// writable (Resume, or close and reopen when Resume cannot) and removes whatever the
// failed writes left past the last acknowledged seq. Clears recovery_needed when done;
// leaves it set (with a warning) while the cause persists.
void recover(log_state& s);

// archive_removal.cpp. The caller holds a read_guard. The anchor as stored in meta (seq 0
// when absent or unreadable, with a warning for the latter).
log_anchor read_anchor(const log_state& s, const rocksdb::ReadOptions& ro);
// A call whose first events were archived: its state as of event `upto` (the last event of
// the archive that moved it), from the `archived` family; nullopt when there is none.
struct archived_call {
  engine::event_seq upto = 0;
  engine::call_state state;
};
std::optional<archived_call> read_archived(const log_state& s, const rocksdb::ReadOptions& ro,
                                           std::string_view call_id);

inline const std::string& zero_hash() {
  static const std::string z(64, '0');
  return z;
}

}  // namespace storage::detail
