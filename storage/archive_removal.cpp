// Moving an archived range out of the live log (contract §9): event_log::remove_archived
// and event_log::purge_archived, and the reads of what a removal leaves (the anchor, the
// archived call states).
//
// The order is what keeps a crash harmless:
//   1. checks (the file, the log, the calls in memory): nothing written yet;
//   2. the archived states of the range's calls, into `archived` (each says which archive
//      event it is the fold up to, so a reader folds only later events onto it: harmless
//      even if the anchor never moves);
//   3. the anchor, synced: the commit point;
//   4. the purge: events at or before the anchor with their index entries, in chunks.
//      Reads already skip that range, so a purge cut short only leaves disk to reclaim; the
//      next purge (the engine runs one at start-up) finishes it.
#include <chrono>
#include <memory>
#include <optional>
#include <unordered_map>

#include <rocksdb/write_batch.h>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "storage/archive.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/event_log.hpp"

namespace storage {

using detail::slice;
using detail::view;

namespace detail {

log_anchor read_anchor(const log_state& s, const rocksdb::ReadOptions& ro) {
  std::string v;
  auto st = s.db->Get(ro, s.cf[cf_meta], slice(anchor_key), &v);
  if (st.IsNotFound()) return {};
  if (!st.ok() || v.size() != seq_key_size + 64) {
    s.warn(st.ok() ? "meta anchor is not [seq:8][hash:64]" : "meta anchor read: " + st.ToString());
    return {};
  }
  return log_anchor{parse_seq_key(std::string_view(v).substr(0, seq_key_size)).value_or(0), v.substr(seq_key_size)};
}

std::optional<archived_call> read_archived(const log_state& s, const rocksdb::ReadOptions& ro,
                                           std::string_view call_id) {
  std::string v;
  auto st = s.db->Get(ro, s.cf[cf_archived], slice(call_id), &v);
  if (!st.ok()) {
    if (!st.IsNotFound()) s.warn("archived read: " + st.ToString());
    return std::nullopt;
  }
  if (v.size() <= seq_key_size) return std::nullopt;
  auto c = engine::decode_call(std::string_view(v).substr(seq_key_size));
  if (!c || c->call_id != call_id) {
    s.warn("archived state of a call does not decode");
    return std::nullopt;
  }
  return archived_call{parse_seq_key(std::string_view(v).substr(0, seq_key_size)).value_or(0), std::move(*c)};
}

}  // namespace detail

namespace {

constexpr std::size_t purge_chunk = 4096;   // events per purge WriteBatch
constexpr std::size_t states_chunk = 1024;  // archived states per WriteBatch

std::string fail_prefix(const std::filesystem::path& p) { return p.string() + ": "; }

// What the log keeps of an archived call: everything but the media (contract §9: "without
// SDPs") and what can no longer happen to it.
engine::call_state strip(engine::call_state c) {
  c.mo_sdp.clear();
  c.mt_sdp.clear();
  c.offer.reset();
  c.timers = {};
  return c;
}

}  // namespace

schemas::result<removal_report, std::string> event_log::remove_archived(const std::filesystem::path& path,
                                                                        const job_progress& progress) {
  using failure = schemas::failure<std::string>;
  const auto t0 = std::chrono::steady_clock::now();
  auto& s = *s_;
  const std::string nothing = "; nothing was removed from the live log";
  if (s.is_reader()) return failure{"a reader instance cannot remove events" + nothing};
  auto say = [&](std::string_view stage, std::uint64_t done, std::uint64_t total) {
    if (progress) progress(stage, done, total);
  };

  // 1. The file on its own: every check read_archive makes.
  std::uint64_t read = 0;
  auto h = read_archive(path, [&](const engine::event&, std::string_view) {
    if ((++read & 4095) == 0) say("checking", read, 0);
    return true;
  });
  if (!h) return failure{h.error() + nothing};
  say("checking", h->events, h->events);

  // Against the log.
  const std::string id = log_id();
  if (h->log_id != id)
    return failure{fail_prefix(path) + "an archive of another log (its logId " + h->log_id.substr(0, 16) +
                   "…, this log's " + id.substr(0, 16) + "…)" + nothing};
  const log_anchor a = anchor();
  if (h->last_seq <= a.seq)
    return failure{fail_prefix(path) + "events " + std::to_string(h->first_seq) + ".." + std::to_string(h->last_seq) +
                   " are archived already (the live log starts at event " + std::to_string(a.seq + 1) + ")" + nothing};
  if (h->first_seq != a.seq + 1)
    return failure{fail_prefix(path) + "out of order: the live log continues at event " + std::to_string(a.seq + 1) +
                   ", this archive starts at event " + std::to_string(h->first_seq) + nothing};
  if (h->first_prev != (a.seq == 0 ? detail::zero_hash() : a.hash))
    return failure{fail_prefix(path) + "its first event does not follow the live log's anchor (event " +
                   std::to_string(a.seq) + ")" + nothing};
  const engine::event_seq last = last_seq();
  if (h->last_seq >= last)
    return failure{fail_prefix(path) + "it reaches the log's last event " + std::to_string(last) +
                   "; at least one event stays in the live log" + nothing};
  auto next = get(h->last_seq + 1);
  if (!next) return failure{"event " + std::to_string(h->last_seq + 1) + " of the live log does not read" + nothing};
  if (next->prev_hash != h->last_hash)
    return failure{fail_prefix(path) + "its last event is not the one the live log's event " +
                   std::to_string(h->last_seq + 1) + " follows (other events than this log's)" + nothing};

  // No call in memory started inside it (contract §9: nothing is removed past a live call's
  // first event). Calls in memory only leave it, and calls that enter start later, so a
  // check now holds for the rest of the job.
  auto persisted = load_persisted();
  if (!persisted) return failure{"the persisted call states do not read: " + persisted.error().detail + nothing};
  if (persisted->seq < h->last_seq)
    return failure{"the persisted call states stop at event " + std::to_string(persisted->seq) +
                   ", before the archive's last event: start the engine once, then archive" + nothing};
  for (const auto& c : persisted->calls)
    if (c.start_seq <= h->last_seq)
      return failure{"call " + c.call_id + " (" + std::string(engine::to_string(c.status)) +
                     ") is still in memory and started at event " + std::to_string(c.start_seq) +
                     ", inside the archive: archive an earlier range (--before), or after it retires" + nothing};

  // 2. The archived states: the fold of the range's calls, onto the state an earlier
  // archive left for calls that started before it. A call is written once it retires (no
  // accepted event changes it after that), the rest at the end, so memory holds only the
  // calls open at a point of the range.
  removal_report rep;
  rep.first_seq = h->first_seq;
  rep.last_seq = h->last_seq;
  const std::string upto = detail::seq_key(h->last_seq);
  std::unordered_map<std::string, engine::call_state> open;
  rocksdb::WriteBatch wb;
  std::size_t in_batch = 0;
  std::string write_error;
  auto write = [&](rocksdb::WriteBatch& batch, bool sync) {
    detail::read_guard g(s);
    if (!g.ready) return g.ready.error().detail;
    rocksdb::WriteOptions wo;
    wo.sync = sync && s.options.sync;
    auto st = s.db->Write(wo, &batch);
    return st.ok() ? std::string() : st.ToString();
  };
  auto put = [&](const engine::call_state& c) {
    wb.Put(s.cf[detail::cf_archived], slice(c.call_id), slice(upto + engine::encode_call(strip(c))));
    ++rep.calls;
    if (++in_batch >= states_chunk) {
      if (write_error.empty()) write_error = write(wb, false);
      wb.Clear();
      in_batch = 0;
    }
  };
  std::uint64_t folded = 0;
  auto again = read_archive(path, [&](const engine::event& e, std::string_view) {
    if ((++folded & 4095) == 0) say("folding", folded, h->events);
    if (!write_error.empty()) return false;
    if (!e.accepted() || e.noop || e.call_id.empty()) return true;
    auto it = open.find(e.call_id);
    if (e.act == engine::action::start) {
      it = open.insert_or_assign(e.call_id, engine::call_state{}).first;
    } else if (it == open.end()) {
      detail::read_guard g(s);
      if (!g.ready) return true;
      auto base = detail::read_archived(s, {}, e.call_id);
      if (!base) return true;  // not a call of this log's history: nothing to keep
      it = open.emplace(e.call_id, std::move(base->state)).first;
    }
    engine::apply(it->second, e);
    if (it->second.retired) {
      put(it->second);
      open.erase(it);
    }
    return true;
  });
  if (!again) return failure{"reading it again: " + again.error() + nothing};
  for (const auto& [cid, c] : open) put(c);
  if (write_error.empty() && in_batch > 0) write_error = write(wb, false);
  if (!write_error.empty()) return failure{"writing the archived call states: " + write_error + nothing};
  say("folding", h->events, h->events);

  // 3. The anchor, synced (and with it the states before it in the WAL).
  rocksdb::WriteBatch anchor_batch;
  anchor_batch.Put(s.cf[detail::cf_meta], slice(detail::anchor_key), slice(upto + h->last_hash));
  if (auto e = write(anchor_batch, true); !e.empty()) return failure{"writing the anchor: " + e + nothing};
  rep.anchor = log_anchor{h->last_seq, h->last_hash};

  // 4. The events and their index entries.
  auto purged = purge_archived(progress);
  if (!purged)
    return failure{"the anchor moved to event " + std::to_string(h->last_seq) +
                   " (the range is out of the live log) but removing its events failed: " + purged.error() +
                   "; the engine finishes it at its next start (or run yna-tool archive --purge)"};
  rep.removed = *purged;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

schemas::result<std::uint64_t, std::string> event_log::purge_archived(const job_progress& progress) {
  using failure = schemas::failure<std::string>;
  auto& s = *s_;
  if (s.is_reader()) return failure{"a reader instance cannot remove events"};
  std::uint64_t removed = 0;
  engine::event_seq anchor_seq = 0;
  for (;;) {
    detail::read_guard g(s);
    if (!g.ready) return failure{g.ready.error().detail};
    anchor_seq = detail::read_anchor(s, {}).seq;
    if (anchor_seq == 0) return removed;
    const std::string bound = detail::seq_key(anchor_seq + 1);
    rocksdb::Slice bound_slice = slice(bound);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &bound_slice;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, s.cf[detail::cf_events]));
    rocksdb::WriteBatch wb;
    std::optional<engine::event_seq> first, last;
    std::size_t n = 0;
    for (it->SeekToFirst(); it->Valid() && n < purge_chunk; it->Next(), ++n) {
      auto seq = detail::parse_seq_key(view(it->key()));
      if (!seq) continue;
      if (!first) first = *seq;
      last = *seq;
      if (auto e = engine::decode_event(view(it->value())); e && e->seq == *seq) {
        const auto ids = detail::ids_of(*e);
        for (int k = 0; k < detail::index_kind_count; ++k)
          for (std::string_view id : ids.of[k])
            wb.Delete(s.cf[detail::index_cf(static_cast<detail::index_kind>(k))], slice(detail::index_key(id, *seq)));
      }
    }
    if (!it->status().ok()) return failure{"reading events: " + it->status().ToString()};
    if (!first) break;
    wb.DeleteRange(s.cf[detail::cf_events], slice(detail::seq_key(*first)), slice(detail::seq_key(*last + 1)));
    // Not synced: a purge lost to a crash is done again by the next one.
    if (auto st = s.db->Write(rocksdb::WriteOptions(), &wb); !st.ok()) return failure{"deleting events: " + st.ToString()};
    removed += n;
    if (progress) progress("removing", *last, anchor_seq);
    if (n < purge_chunk) break;
  }
  if (removed > 0) {
    // Give the disk back now rather than whenever compaction reaches the range.
    detail::read_guard g(s);
    if (g.ready) {
      const std::string end = detail::seq_key(anchor_seq + 1);
      rocksdb::Slice end_slice = slice(end);
      rocksdb::CompactRangeOptions co;
      co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
      if (auto st = s.db->CompactRange(co, s.cf[detail::cf_events], nullptr, &end_slice); !st.ok())
        s.warn("compacting the archived range: " + st.ToString());
    }
  }
  return removed;
}

}  // namespace storage
