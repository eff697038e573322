// Moving an archived range out of the live log (contract §9): event_log::remove_archived
// and event_log::purge_archived, and the reads of what a removal leaves (the anchor, the
// archived call states).
//
// Reads run on the calling thread; every write is a task on the log's writer thread
// (run_on_writer), which stays the one thread that writes.
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
#include <thread>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <rocksdb/write_batch.h>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "storage/archive.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/event_log.hpp"

namespace storage {

namespace {
// How long a removal waits for a delivery cursor behind its range to pass it.
constexpr std::chrono::seconds cursor_grace{5};
}  // namespace

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

// Writes a batch through the log's writer thread, the one thread that writes to the log:
// `fill` builds it there. Returns "" or what failed. A failed write leaves the log to
// recover as a failed append would.
std::string write_on_writer(detail::log_state& s, const std::function<void(rocksdb::WriteBatch&)>& fill, bool sync) {
  std::string error;
  const bool ran = detail::run_on_writer(s, [&] {
    if (!detail::ready_to_write(s)) {
      error = "the log is recovering from a failed write";
      return;
    }
    rocksdb::WriteBatch wb;
    fill(wb);
    rocksdb::WriteOptions wo;
    wo.sync = sync && s.options.sync;
    if (auto st = s.db->Write(wo, &wb); !st.ok()) {
      error = st.ToString();
      s.recovery_needed = true;
      s.failed_with = detail::to_store_error(st);
      s.discarding = true;
    }
  });
  return ran ? error : std::string("the log is closing");
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

  // No delivery owed past it (contract §13): every dispatcher's cursor is at or after its
  // last event. Cursors only move forward, so this too holds for the rest of the job. A
  // running engine writes its cursors a moment after it delivers (or, with nothing owed,
  // after it commits): a cursor behind is given a few seconds to pass before refusing.
  const auto give_up = std::chrono::steady_clock::now() + cursor_grace;
  for (;;) {
    std::optional<std::pair<std::string, engine::event_seq>> behind;
    for (const auto& [name, seq] : cursors())
      if (seq < h->last_seq) behind.emplace(name, seq);
    if (!behind) break;
    if (std::chrono::steady_clock::now() >= give_up)
      return failure{"the delivery cursor " + behind->first + " is at event " + std::to_string(behind->second) +
                     ", inside the archive (deliveries after it are still owed): archive an earlier range "
                     "(--before), or once it has caught up" + nothing};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // 2. The archived states: the fold of the range's calls, onto the state an earlier
  // archive left for calls that started before it. A call is written once it retires (no
  // accepted event changes it after that), the rest at the end, so memory holds only the
  // calls open at a point of the range.
  removal_report rep;
  rep.first_seq = h->first_seq;
  rep.last_seq = h->last_seq;
  const std::string upto = detail::seq_key(h->last_seq);
  std::unordered_map<std::string, engine::call_state> open;
  std::vector<std::pair<std::string, std::string>> pending;  // call id, archived value
  std::string write_error;
  auto flush = [&] {
    if (pending.empty() || !write_error.empty()) return;
    write_error = write_on_writer(
        s,
        [&](rocksdb::WriteBatch& wb) {
          for (const auto& [id, value] : pending) wb.Put(s.cf[detail::cf_archived], slice(id), slice(value));
        },
        false);
    pending.clear();
  };
  auto put = [&](const engine::call_state& c) {
    pending.emplace_back(c.call_id, upto + engine::encode_call(strip(c)));
    ++rep.calls;
    if (pending.size() >= states_chunk) flush();
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
  flush();
  if (!write_error.empty()) return failure{"writing the archived call states: " + write_error + nothing};
  say("folding", h->events, h->events);

  // 3. The anchor, synced (and with it the states before it in the WAL).
  const std::string anchor_value = upto + h->last_hash;
  if (auto e = write_on_writer(
          s, [&](rocksdb::WriteBatch& wb) { wb.Put(s.cf[detail::cf_meta], slice(detail::anchor_key), slice(anchor_value)); },
          true);
      !e.empty())
    return failure{"writing the anchor: " + e + nothing};
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
    // Read the next chunk (under the read lock), then delete it through the writer thread
    // (without the lock: the writer may need it to recover).
    std::vector<std::pair<detail::cf_id, std::string>> keys;  // index entries to delete
    std::optional<engine::event_seq> first, last;
    std::size_t n = 0;
    {
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
      for (it->SeekToFirst(); it->Valid() && n < purge_chunk; it->Next(), ++n) {
        auto seq = detail::parse_seq_key(view(it->key()));
        if (!seq) continue;
        if (!first) first = *seq;
        last = *seq;
        if (auto e = engine::decode_event(view(it->value())); e && e->seq == *seq) {
          std::string scratch;
          const auto ids = detail::ids_of(*e, scratch);
          for (int k = 0; k < detail::index_kind_count; ++k)
            for (std::string_view id : ids.of[k])
              keys.emplace_back(detail::index_cf(static_cast<detail::index_kind>(k)), detail::index_key(id, *seq));
        }
      }
      if (!it->status().ok()) return failure{"reading events: " + it->status().ToString()};
    }
    if (!first) break;
    const std::string from_key = detail::seq_key(*first), to_key = detail::seq_key(*last + 1);
    // Not synced: a purge lost to a crash is done again by the next one.
    if (auto e = write_on_writer(
            s,
            [&](rocksdb::WriteBatch& wb) {
              for (const auto& [cf, key] : keys) wb.Delete(s.cf[cf], slice(key));
              wb.DeleteRange(s.cf[detail::cf_events], slice(from_key), slice(to_key));
            },
            false);
        !e.empty())
      return failure{"deleting events: " + e};
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
