#pragma once
// storage::event_log: the engine's durable event log over RocksDB (see
// storage/README.md for the key layout, the hash chain and the durability rule).
//
// Owns one RocksDB instance in `log_options::dir` and, when opened for writing,
// one writer thread that performs every write (appends, in the order they were
// handed over). Two kinds of instance:
//   - open():        the one writer (RocksDB's LOCK keeps a second process out);
//   - open_reader(): a RocksDB secondary that follows a live writer (yna-tool),
//                    falling back to read-only when no secondary can be made.
// Read functions may be called from any thread, concurrently with each other and
// with appends; a reader instance catches up with the writer at the start of each.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/event_store.hpp"
#include "engine/types.hpp"
#include "schemas/result.hpp"

namespace rocksdb {
class Env;
}

namespace storage {

namespace detail {
struct log_state;
}

struct log_options {
  std::filesystem::path dir;      // the RocksDB folder (the engine passes <data-dir>/log)
  bool sync = true;               // fsync the WAL before acknowledging an append (contract §6)
  bool compress = true;           // LZ4, ZSTD in the bottommost level; false: none (measurements only)
  // After a full disk: once this much space is free the log is reopened, rather than
  // waiting for RocksDB's own recovery, which wants write_buffer_size (64 MiB) free
  // and so may never come on a small or nearly full disk.
  std::uint64_t resume_free_bytes = 4 << 20;
  // RocksDB's memory, as a whole: a block cache of this many bytes, to which the
  // memtables of every family are charged (half of it at most before RocksDB flushes).
  // Without it each family had its own memtables (up to about 350 MiB) beside a 64 MiB
  // cache, and RSS crept up over hours (BENCHMARKS.md, state over time).
  std::uint64_t memory_budget = 128 << 20;
  // Where the store reports what it cannot return as a value (a failed write's cause,
  // a failed recovery). Called on the writer thread. Empty: one line to stderr.
  std::function<void(std::string_view)> on_warning;
  // Test seam (style §9): run RocksDB on this Env, e.g. one whose files fail on demand.
  // Not owned; must outlive the log. Null: the default Env.
  rocksdb::Env* env = nullptr;
};

enum class open_errc : std::uint8_t {
  io_error,             // RocksDB could not open the folder (permissions, disk, bad options)
  locked,               // another process (or instance) has the log open for writing
  not_found,            // open_reader: there is no log in that folder
  unsupported_version,  // the log was written in another format version
  corruption,           // RocksDB reports corruption, or the log's metadata is inconsistent
};
std::string_view to_string(open_errc e) noexcept;
struct open_error {
  open_errc code = open_errc::io_error;
  std::string detail;  // RocksDB's message, for operators
};

enum class read_errc : std::uint8_t {
  io_error,      // RocksDB could not read
  bad_key,       // a key in the events family is not an 8-byte seq
  undecodable,   // the record at `seq` does not decode (engine::decode_event)
  seq_mismatch,  // the record at `seq` says another seq
};
std::string_view to_string(read_errc e) noexcept;
struct read_error {
  read_errc code = read_errc::io_error;
  engine::event_seq seq = 0;  // the event concerned, 0 when unknown
  std::string detail;
};

// Outcome of verify(). ok, or the first bad event and why.
struct verify_report {
  bool ok = true;
  std::uint64_t checked = 0;         // events walked
  engine::event_seq anchor = 0;      // the walk began after it (events 1..anchor are archived)
  engine::event_seq last_seq = 0;    // the last seq walked
  engine::event_seq first_bad = 0;   // when !ok: the first event found bad (0: not an event's fault)
  std::string problem;               // when !ok: one line for operators
};

// RocksDB's memory now (event_log::memory()), in bytes.
struct log_memory {
  std::uint64_t budget = 0;         // log_options::memory_budget
  std::uint64_t memtables = 0;      // every family's memtables, mutable and immutable
  std::uint64_t block_cache = 0;    // the cache's usage, memtable charges included
  std::uint64_t pinned = 0;         // cache entries pinned (L0 indexes and filters, readers)
  std::uint64_t table_readers = 0;  // table readers' memory outside the cache
};

// Called on the writer thread after each append: (events in batch, seconds the
// write and sync took, ok). For metrics; must be quick.
using sync_observer = std::function<void(std::size_t, double, bool)>;

// Where the live log starts (contract §9): events 1..seq were archived (yna-tool archive)
// and removed from it; event seq+1's prev is `hash`, the SHA-256 of record seq. seq 0:
// nothing archived (hash empty).
struct log_anchor {
  engine::event_seq seq = 0;
  std::string hash;
};

// What event_log::remove_archived did.
struct removal_report {
  engine::event_seq first_seq = 0, last_seq = 0;  // the archive's range, now out of the live log
  std::uint64_t calls = 0;     // archived calls whose final state (without SDPs) the log keeps
  std::uint64_t removed = 0;   // events deleted (with their index entries)
  log_anchor anchor;           // the new anchor
  double seconds = 0;
};
// Progress of a long storage job: (stage, done, total; total 0 when unknown).
using job_progress = std::function<void(std::string_view, std::uint64_t, std::uint64_t)>;

// The calls the log persists (contract §9): every call in memory when `seq` was the
// last event (live, and ended but not yet retired).
struct persisted_state {
  engine::event_seq seq = 0;  // the persisted calls are the fold of events 1..seq
  std::vector<engine::call_state> calls;
  std::vector<engine::pusher> pushers;  // the push registrations (contract §13), same seq
  std::vector<engine::number_settings> settings;  // the numbers' settings (contract §10), same seq
};

class event_log final : public engine::event_store,
                        public engine::event_reader,
                        public engine::call_lookup,
                        public engine::delivery_source {
 public:
  // Opens `options.dir` for writing, creating it (and missing parents) if absent, and
  // starts the writer thread. On success the chain head and last seq are loaded from
  // the last stored event. On error: locked when another writer holds the folder,
  // unsupported_version for another format, corruption or io_error otherwise.
  // Start-up only: not on a hot path.
  [[nodiscard]] static schemas::result<std::unique_ptr<event_log>, open_error> open(const log_options& options);

  // Opens an existing log for reading, also while a writer runs: a RocksDB secondary
  // instance whose info log goes to `scratch_dir` (created; the caller removes it
  // afterwards), or read-only when no secondary can be made. Appends on a reader fail
  // with store_error::closed. On error: not_found when `dir` holds no log.
  [[nodiscard]] static schemas::result<std::unique_ptr<event_log>, open_error> open_reader(
      const std::filesystem::path& dir, const std::filesystem::path& scratch_dir);

  // Finishes every append already handed over, stops the writer thread, flushes the
  // memtables (a writer whose last write did not fail: the next open replays no WAL),
  // closes RocksDB. Appends handed over during destruction fail with closed.
  ~event_log() override;
  event_log(const event_log&) = delete;
  event_log& operator=(const event_log&) = delete;

  // engine::event_store. Never blocks on I/O: hands the batch to the writer thread,
  // which fills prev_hash, writes events, index entries, the /start keys (by_start) and
  // the `calls` states in one WriteBatch (WAL fsync when options.sync) and then calls
  // `done` on the writer thread. Failures: corruption when the batch's seqs do not
  // continue the log (nothing written), no_space when the disk is full, io_error for
  // other write errors, closed on a reader or while closing. After a failure nothing of
  // the batch is readable, the chain head is unchanged, and the next append first
  // recovers (RocksDB's Resume, or a reopen when RocksDB cannot resume), so service
  // returns by itself once the cause is gone. An empty batch succeeds.
  using engine::event_store::append_async;
  void append_async(std::vector<engine::event>& batch, const std::vector<engine::call_change>* calls,
                    const engine::side_changes* side, engine::append_done done) override;

  // Reader instances only (no-op success on a writer): applies what the writer wrote
  // since the last catch-up. The read functions below call it themselves.
  [[nodiscard]] schemas::status<read_error> catch_up() const;
  bool is_reader() const noexcept;

  // RocksDB's memory now (properties of the DB and its cache). Any thread; cheap.
  log_memory memory() const;

  // The anchor (contract §9): read from the log each time (one point read). Reads below
  // never return events at or before it, also while an interrupted removal left some.
  log_anchor anchor() const;
  engine::event_seq anchor_seq() const override { return anchor().seq; }

  // Moves the range of an archive file (storage/archive.hpp) out of the live log (contract
  // §9). Writer instances only; any thread but the writer's, while appends go on (the
  // engine's admin socket, or yna-tool when no engine runs): it reads on the calling thread
  // and hands its writes to the writer thread, queued between appends. Refuses, removing nothing, unless: the file passes
  // every check of read_archive; it names this log (logId); it starts right at the anchor
  // (its firstPrev is the anchor's hash) and the log's event after its last names its
  // lastHash as prev; at least one event stays; no call in memory (live, or ended but not
  // retired) started inside it. Then: each call started in it gets its final state written
  // to `archived` (without SDPs: parties, times, status, reason, /start key), the anchor
  // moves to its last event (synced: from here on the range is out of the live log), and
  // purge_archived deletes the events and their index entries. Idempotency keys (by_start)
  // stay. A crash at any point leaves the log whole: before the anchor write nothing was
  // removed, after it the next purge finishes the job.
  [[nodiscard]] schemas::result<removal_report, std::string> remove_archived(const std::filesystem::path& archive,
                                                                            const job_progress& progress = {});
  // Deletes whatever an interrupted removal left at or before the anchor (events and their
  // index entries), then compacts that range away. Returns the events deleted; 0 at once
  // when there are none. Writer instances only; any thread.
  [[nodiscard]] schemas::result<std::uint64_t, std::string> purge_archived(const job_progress& progress = {});

  // Seq of the last stored event; 0 for an empty log.
  engine::event_seq last_seq() const;
  // The log's name: hex SHA-256 of its first record ("" while it is empty). Archives carry
  // it, so an archive of another log is told apart.
  std::string log_id() const;
  // The persisted call states (the `calls` family), read as of one point in time. Start-up
  // and tools; O(calls in memory), not O(history).
  [[nodiscard]] schemas::result<persisted_state, read_error> load_persisted() const;
  // Writes call states outside an append (start-up, when the persisted state was behind
  // the log and the difference was folded): `calls` and the state seq `seq`, synced. Only
  // with no append in flight. Writer instances only.
  [[nodiscard]] schemas::status<read_error> persist_calls(const std::vector<engine::call_change>& calls,
                                                         engine::event_seq seq,
                                                         const engine::side_changes& side = {});

  // engine::call_lookup (a retired call, contract §9): the call folded from its events
  // through by_call, starting from its archived state when its first events were archived
  // (all read as of one RocksDB snapshot, so a removal running meanwhile cannot split the
  // view); the call of a /start key through by_start.
  std::optional<engine::call_state> load_call(std::string_view call_id) const override;
  std::optional<std::string> find_start(std::string_view from, std::string_view client_correlator) const override;

  // Calls fn for each stored event with seq in [from, to] after the anchor, in seq order, with the
  // decoded event and its raw record; stops early (ok) when fn returns false. Fails
  // at the first record that does not decode or whose seq differs from its key, naming
  // that seq (events before it were passed to fn). Does not detect gaps: verify() does.
  using scan_fn = std::function<bool(const engine::event&, std::string_view raw)>;
  [[nodiscard]] schemas::status<read_error> scan(engine::event_seq from, engine::event_seq to,
                                                 const scan_fn& fn) const;
  // The event at `seq`, or nullopt when absent or unreadable (scan() tells why).
  std::optional<engine::event> get(engine::event_seq seq) const;

  // engine::event_reader (notification replay): through the by_msisdn index.
  std::vector<engine::event_seq> party_events(const std::vector<std::string>& msisdns, engine::event_seq after,
                                              engine::event_seq upto, std::size_t limit) const override;
  std::optional<engine::event> read(engine::event_seq seq) const override { return get(seq); }

  // Index queries: seqs in increasing order; empty on no match (and on a read error,
  // which is reported through on_warning).
  std::vector<engine::event_seq> seqs_by_call(std::string_view call_id) const;
  // Events where the number acted, or that started a call from or to it. Only /start
  // events carry a call's numbers, so later events of a call are found under the
  // number of the party that acted; use seqs_by_call for a call's whole timeline.
  std::vector<engine::event_seq> seqs_by_msisdn(
      std::string_view msisdn, engine::event_seq from = 1,
      engine::event_seq to = std::numeric_limits<engine::event_seq>::max()) const;
  std::vector<engine::event_seq> seqs_by_txn(std::string_view txn_id) const;

  // Walks the whole live log (on a writer: as of one RocksDB snapshot, so appends may
  // continue) from its anchor (the first event's prev must be the anchor's hash; 64 '0's
  // without one): seqs anchor+1..last without gap, each record decodes and names its own seq,
  // each prev is the hex sha256 of the previous raw record (64 '0's for seq 1), every
  // event has its index entries and every index entry points at an event that names
  // it, every accepted /start with a clientCorrelator has its by_start entry naming its
  // call and every by_start entry was written by such a /start. Stops at the first problem. A changed record is named by its own seq (it is
  // found through its successor's prev); a change to the very last record cannot be
  // seen by the chain. `progress` (optional) gets the events checked so far, every
  // 4096 events and at the end. Slow on big logs: for tools, not the engine.
  verify_report verify(const std::function<void(std::uint64_t)>& progress = {}) const;

  // engine::delivery_source (contract §13, storage/cursors.cpp). Cursors live in `meta`;
  // set_cursor queues the write on the writer thread (in order with the appends, without
  // a sync: the next batch's sync covers it) and returns at once; writer instances only
  // (false on a reader or while closing).
  std::vector<engine::event> events_after(engine::event_seq after, std::size_t limit) const override;
  engine::event_seq acknowledged_seq() const override { return last_seq(); }
  std::map<std::string, engine::event_seq> cursors() const override;
  bool set_cursor(std::string_view name, std::optional<engine::event_seq> seq) override;

  // Fault injection seam (style §9): the next append fails with `e`, nothing written.
  // Any thread.
  void fail_next_append(engine::store_error e = engine::store_error::io_error);
  // Replaces the observer; takes effect from the next append. Any thread.
  void set_sync_observer(sync_observer observer);

 private:
  explicit event_log(std::unique_ptr<detail::log_state> state);
  std::unique_ptr<detail::log_state> s_;
};

}  // namespace storage
