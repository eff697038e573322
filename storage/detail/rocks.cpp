#include "storage/detail/rocks.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include <rocksdb/filter_policy.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

namespace storage::detail {
namespace {

constexpr std::size_t mib = 1024 * 1024;

bool supported(rocksdb::CompressionType t) {
  const auto all = rocksdb::GetSupportedCompressions();
  return std::find(all.begin(), all.end(), t) != all.end();
}

// Records are JSON: they compress well. LZ4 while hot, ZSTD once they settle at
// the bottom level; whatever this librocksdb supports.
void set_compression(rocksdb::ColumnFamilyOptions& o) {
  if (supported(rocksdb::kLZ4Compression))
    o.compression = rocksdb::kLZ4Compression;
  else if (supported(rocksdb::kSnappyCompression))
    o.compression = rocksdb::kSnappyCompression;
  else
    o.compression = rocksdb::kNoCompression;
  if (supported(rocksdb::kZSTD)) o.bottommost_compression = rocksdb::kZSTD;
}

// The id part of an index key ([id][0x00][seq:8] -> [id][0x00]).
class index_id_transform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "yna.index_id"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - seq_key_size);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > seq_key_size; }
};

std::shared_ptr<const rocksdb::SliceTransform> index_id_prefix() {
  static const auto t = std::make_shared<index_id_transform>();
  return t;
}

rocksdb::ColumnFamilyOptions cf_options(cf_id which, const std::shared_ptr<rocksdb::Cache>& cache, bool writer) {
  rocksdb::ColumnFamilyOptions o;
  o.compaction_style = rocksdb::kCompactionStyleLevel;
  set_compression(o);
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  // Index and filter blocks live in the block cache, not beside it: otherwise every open
  // table file holds its own, and that memory grows with the log's size (contract §9:
  // memory must not grow with history). L0's stay pinned (they are read on every lookup).
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // No filters but on the point-lookup families (calls, by_start): events are read by
  // range, indexes by seek (a whole-key bloom cannot help a seek, and see README for
  // why there is no prefix bloom).
  t.filter_policy = nullptr;
  switch (which) {
    case cf_events:
      o.write_buffer_size = 64 * mib;
      o.max_write_buffer_number = 3;
      o.target_file_size_base = 64 * mib;
      o.max_bytes_for_level_base = 256 * mib;
      t.block_size = 16 * 1024;
      break;
    case cf_by_call:
    case cf_by_msisdn:
    case cf_by_txn:
      // The index inserts were the log writer's top cost (BENCHMARKS.md): each searched a
      // skiplist from the top, through cache misses. So:
      //  - by_msisdn, which the engine reads (notification replay, `since`): entries of one
      //    number arrive in seq order, each right after the previous one of its number, so
      //    RocksDB keeps an insert hint per number and skips the search;
      //  - by_call and by_txn, which only yna-tool reads: in the writer, a vector memtable
      //    (an append per insert, sorted once at flush). Every read of a mutable vector
      //    memtable sorts a copy of it, so readers (yna-tool's secondary or read-only
      //    instance, which replays the WAL into memtables of its own) keep the skiplist:
      //    the memtable kind is chosen at each open, not stored.
      //  - by_call is read by the engine too since calls retire (contract §9: a retired
      //    call is folded from its events), so it keeps the skiplist with the hint.
      // LZ4 at every level: the indexes are inserted in id order, not seq order, so every
      // compaction rewrites them, and ZSTD on each rewrite into the bottom level grew to
      // 13 % of the engine's CPU by 1.25M calls (soak profile). Their keys are short; the
      // bytes ZSTD saves are the events'.
      o.bottommost_compression = rocksdb::kDisableCompressionOption;
      if (which == cf_by_msisdn || which == cf_by_call)
        o.memtable_insert_with_hint_prefix_extractor = index_id_prefix();
      else if (writer)
        o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
      o.write_buffer_size = 16 * mib;
      o.target_file_size_base = 32 * mib;
      o.max_bytes_for_level_base = 128 * mib;
      break;
    case cf_snapshots:
      o.write_buffer_size = 1 * mib;  // no longer written
      break;
    case cf_calls:
    case cf_by_start:
    case cf_archived:
      // Point lookups by whole key (a call's state, the call of a /start key), mostly of
      // keys that are not there (a new /start key): a whole-key bloom answers those
      // without reading a block. `calls` is rewritten on every batch and shrinks as calls
      // retire; `by_start` grows with history like the other indexes.
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      t.whole_key_filtering = true;
      if (which != cf_archived) o.bottommost_compression = rocksdb::kDisableCompressionOption;  // as the indexes
      // Partitioned: a lookup loads one 4 KiB filter partition (and one index partition),
      // not the whole filter of a table. A full filter grows with the table (by_start's
      // bottom level: megabytes), the block cache cannot keep it beside the memtables,
      // and every /start with a clientCorrelator then read it back from the file (the
      // soak at 1.25M calls: 6 % of the engine's CPU in page faults and copies of filter
      // blocks on the lookup thread). Only the partitions' top level stays pinned.
      t.partition_filters = true;
      t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
      t.metadata_block_size = 4096;
      t.pin_top_level_index_and_filter = true;
      t.cache_index_and_filter_blocks_with_high_priority = true;
      o.write_buffer_size = 16 * mib;
      break;
    default:
      o.write_buffer_size = 1 * mib;
      break;
  }
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

class forwarding_logger_impl final : public rocksdb::Logger {
 public:
  explicit forwarding_logger_impl(std::function<void(std::string_view)> sink)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), sink_(std::move(sink)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    const int n = std::vsnprintf(line, sizeof line, format, ap);
    if (n > 0) sink_("rocksdb: " + std::string(line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1)));
  }

 private:
  std::function<void(std::string_view)> sink_;
};

}  // namespace

std::shared_ptr<rocksdb::Logger> forwarding_logger(std::function<void(std::string_view)> sink) {
  return std::make_shared<forwarding_logger_impl>(std::move(sink));
}

rocksdb::DBOptions db_options(bool secondary, rocksdb::Env* env) {
  rocksdb::DBOptions o;
  if (env) o.env = env;
  o.create_if_missing = !secondary;
  o.create_missing_column_families = !secondary;
  o.manual_wal_flush = false;        // every Write reaches the WAL file at once
  o.max_open_files = secondary ? -1 : 512;
  o.max_background_jobs = 2;
  o.bytes_per_sync = 1 * mib;        // smooth table-file writeback
  // The idle families (snapshots, meta) would otherwise pin old WAL files forever.
  o.max_total_wal_size = 256 * mib;
  o.keep_log_file_num = 4;
  // After a failed write the writer thread reopens the DB (storage/recovery.cpp); RocksDB
  // must not resume in place behind its back.
  o.max_bgerror_resume_count = 0;
  // One writer thread: nothing to parallelise, and the index families' insert hints
  // (cf_options) only work on serial memtable inserts.
  o.allow_concurrent_memtable_write = false;
  o.max_log_file_size = 16 * mib;
  return o;
}

memory_budget make_memory_budget(std::uint64_t bytes) {
  memory_budget b;
  b.cache = rocksdb::NewLRUCache(bytes);
  // Charged to the cache: memtable bytes evict cached blocks, so memtables plus blocks
  // stay within `bytes`. Past the buffer size RocksDB flushes the biggest memtable.
  b.write_buffers = std::make_shared<rocksdb::WriteBufferManager>(bytes / 2, b.cache);
  return b;
}

std::vector<rocksdb::ColumnFamilyDescriptor> cf_descriptors(bool writer, const std::shared_ptr<rocksdb::Cache>& cache,
                                                            bool compress) {
  std::vector<rocksdb::ColumnFamilyDescriptor> d;
  for (int i = 0; i < cf_count; ++i)
    d.emplace_back(i == cf_default ? rocksdb::kDefaultColumnFamilyName : std::string(cf_names[i]),
                   cf_options(static_cast<cf_id>(i), cache, writer));
  if (!compress)
    for (auto& cf : d) cf.options.compression = cf.options.bottommost_compression = rocksdb::kNoCompression;
  return d;
}

engine::store_error to_store_error(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return engine::store_error::no_space;
  const std::string text = s.ToString();
  if (text.find("No space left") != std::string::npos || text.find("ENOSPC") != std::string::npos)
    return engine::store_error::no_space;
  if (s.IsShutdownInProgress()) return engine::store_error::closed;
  if (s.IsCorruption()) return engine::store_error::corruption;
  return engine::store_error::io_error;
}

open_errc to_open_errc(const rocksdb::Status& s) {
  const std::string text = s.ToString();
  if (s.IsIOError() && (text.find("lock") != std::string::npos || text.find("LOCK") != std::string::npos))
    return open_errc::locked;
  if (s.IsPathNotFound() || text.find("does not exist") != std::string::npos) return open_errc::not_found;
  if (s.IsCorruption()) return open_errc::corruption;
  return open_errc::io_error;
}

}  // namespace storage::detail
