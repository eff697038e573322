#pragma once
// RocksDB specifics of the log: column families, options, and turning a RocksDB
// Status into our error values. Only storage/*.cpp include this (and RocksDB).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/write_buffer_manager.h>

#include "engine/event_store.hpp"
#include "storage/detail/keys.hpp"
#include "storage/event_log.hpp"

namespace storage::detail {

// Column families, in the order they are opened (handles are indexed by this).
// `snapshots` is no longer written (whole-table snapshots gave way to `calls`); it is
// still opened, since RocksDB opens a folder only with all of its families.
enum cf_id : int {
  cf_default, cf_events, cf_by_call, cf_by_msisdn, cf_by_txn, cf_snapshots, cf_meta, cf_calls, cf_by_start,
  cf_archived, cf_count
};
inline constexpr std::array<const char*, cf_count> cf_names = {
    "default", "events", "by_call", "by_msisdn", "by_txn", "snapshots", "meta", "calls", "by_start", "archived"};
inline cf_id index_cf(index_kind k) noexcept { return static_cast<cf_id>(cf_by_call + static_cast<int>(k)); }

inline constexpr std::string_view format_version_key = "format_version";
inline constexpr std::string_view format_version = "1";
// meta: hex SHA-256 of the log's first record, written with it: names the log (archives).
inline constexpr std::string_view log_id_key = "log_id";
// meta: the anchor (contract §9), [seq:8][hex sha256 of record seq]: events 1..seq were
// archived and removed (or are being removed); the live log continues at seq+1, whose
// prev is that hash. Absent: nothing archived.
inline constexpr std::string_view anchor_key = "anchor";
// meta: [seq:8], every event up to it was synced and acknowledged when it was written. The
// writer puts it in each batch (and alone when idle after a sync), so a secondary reader
// (yna-tool beside a running engine), which sees the WAL as written, shows no event the
// engine has not acknowledged (issue 19: writes are synced after they are visible).
inline constexpr std::string_view durable_key = "durable";
// meta: "cursor/" + name → [seq:8], a dispatcher's delivery cursor (contract §13): every
// delivery owed for events up to seq is done. Archiving stops at the lowest.
inline constexpr std::string_view cursor_prefix = "cursor/";

// secondary: options for DB::OpenAsSecondary / OpenForReadOnly (keeps every table
// file open, as the secondary requires, and creates nothing). env: null for the default.
rocksdb::DBOptions db_options(bool secondary, rocksdb::Env* env = nullptr);

// The log's one memory budget (log_options::memory_budget): a block cache of `bytes`
// that the memtables of every family are charged to (a WriteBufferManager of half of
// it), so RocksDB's memory is bounded as a whole, not per family. One per event_log,
// kept across the writer's reopens.
struct memory_budget {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
};
memory_budget make_memory_budget(std::uint64_t bytes);

// RocksDB's own diagnostics, warnings and worse only, handed to `sink` instead of the
// LOG file in the data folder. On a full disk that file fails like the WAL, and the
// Debian librocksdb (built with assertions) aborts on the next line written to it.
std::shared_ptr<rocksdb::Logger> forwarding_logger(std::function<void(std::string_view)> sink);
// writer: the options of the one writing instance (see cf_options for what differs).
// compress: false writes every SST uncompressed (measurements only, tools/bench/bytes-per-event.sh).
std::vector<rocksdb::ColumnFamilyDescriptor> cf_descriptors(bool writer, const std::shared_ptr<rocksdb::Cache>& cache,
                                                            bool compress = true);

engine::store_error to_store_error(const rocksdb::Status& s);
open_errc to_open_errc(const rocksdb::Status& s);

inline rocksdb::Slice slice(std::string_view s) noexcept { return {s.data(), s.size()}; }
inline std::string_view view(const rocksdb::Slice& s) noexcept { return {s.data(), s.size()}; }

}  // namespace storage::detail
