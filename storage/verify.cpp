// event_log::verify: the integrity walk behind `yna-tool verify`.
//
// One pass over the events checks numbering, decoding and the chain, and looks up
// each event's index entries (so every event has its entries) while counting them.
// If an index family then holds exactly that many keys, it holds nothing else; only
// when the counts differ is the family walked again to find the stray entry, the
// slow part (one event read per entry).
#include <array>
#include <memory>
#include <optional>
#include <string>

#include "engine/codec.hpp"
#include "schemas/digest.hpp"
#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/event_log.hpp"

namespace storage {
namespace {

using detail::slice;
using detail::view;

constexpr std::uint64_t progress_every = 4096;

verify_report bad(verify_report r, engine::event_seq seq, std::string problem) {
  r.ok = false;
  r.first_bad = seq;
  r.problem = std::move(problem);
  return r;
}

std::string printable(std::string_view id) {
  std::string out;
  for (unsigned char c : id) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// Releases the RocksDB snapshot the walk reads from.
struct snapshot_guard {
  rocksdb::DB* db;
  const rocksdb::Snapshot* snap;
  ~snapshot_guard() {
    if (snap) db->ReleaseSnapshot(snap);
  }
};

// The smallest seq among entries of `kind` that do not point at an event naming
// them, as a finished report; ok when there is none.
verify_report find_stray(const detail::log_state& s, const rocksdb::ReadOptions& ro, detail::index_kind kind,
                         engine::event_seq anchor, verify_report r) {
  const auto name = std::string(detail::to_string(kind));
  std::optional<verify_report> first;
  auto consider = [&](engine::event_seq seq, std::string problem) {
    if (!first || seq < first->first_bad) first = bad(r, seq, std::move(problem));
  };
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, s.cf[detail::index_cf(kind)]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto entry = detail::parse_index_key(view(it->key()));
    if (!entry) {
      consider(0, name + " has a malformed key '" + printable(view(it->key())) + "'");
      continue;
    }
    if (entry->seq <= anchor) continue;  // archived: left by an interrupted purge
    const std::string where = name + " entry '" + printable(entry->id) + "' -> " + std::to_string(entry->seq);
    std::string raw;
    auto st = s.db->Get(ro, s.cf[detail::cf_events], slice(detail::seq_key(entry->seq)), &raw);
    if (st.IsNotFound()) {
      consider(entry->seq, where + ": no such event");
      continue;
    }
    if (!st.ok()) return bad(r, entry->seq, where + ": " + st.ToString());
    auto ev = engine::decode_event(raw);
    if (!ev || !detail::names(*ev, kind, entry->id)) consider(entry->seq, where + ": the event does not name it");
  }
  if (!it->status().ok()) return bad(r, 0, name + ": " + it->status().ToString());
  return first ? *first : bad(r, 0, name + ": entry count differs from the events' but no stray entry was found");
}

// The by_start entry that no accepted /start of the log wrote (its count differs from the
// starts'), as a finished report.
verify_report find_stray_start(const detail::log_state& s, const rocksdb::ReadOptions& ro, engine::event_seq anchor,
                               verify_report r) {
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(ro, s.cf[detail::cf_by_start]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key(view(it->key()));
    const std::string call_id(view(it->value()));
    const std::string where = "by_start entry '" + printable(key) + "' -> call '" + printable(call_id) + "'";
    if (anchor > 0) {
      if (auto a = detail::read_archived(s, ro, call_id); a && a->state.start_seq <= anchor) continue;  // counted apart
    }
    // The call's first event, through by_call: it must be the /start that wrote this key.
    std::unique_ptr<rocksdb::Iterator> c(s.db->NewIterator(ro, s.cf[detail::cf_by_call]));
    const std::string prefix = detail::index_prefix(call_id);
    c->Seek(slice(prefix));
    std::optional<engine::event> first;
    if (c->Valid() && view(c->key()).starts_with(prefix)) {
      if (auto entry = detail::parse_index_key(view(c->key())); entry && entry->id == call_id) {
        std::string raw;
        if (s.db->Get(ro, s.cf[detail::cf_events], slice(detail::seq_key(entry->seq)), &raw).ok())
          if (auto ev = engine::decode_event(raw)) first = std::move(*ev);
      }
    }
    if (!first) return bad(r, 0, where + ": the log has no event of that call");
    const auto sk = detail::start_key_of(*first);
    if (!sk || *sk != key) return bad(r, first->seq, where + ": the call's /start (event " +
                                                         std::to_string(first->seq) + ") does not have that key");
  }
  if (!it->status().ok()) return bad(r, 0, "by_start: " + it->status().ToString());
  return bad(r, 0, "by_start: entry count differs from the /starts' but no stray entry was found");
}

}  // namespace

verify_report event_log::verify(const std::function<void(std::uint64_t)>& progress) const {
  verify_report r;
  const auto& s = *s_;
  detail::read_guard g(s);  // held throughout: the writer thread cannot reopen under us
  if (!g.ready) return bad(r, 0, g.ready.error().detail);
  snapshot_guard guard{s.db, s.is_reader() ? nullptr : s.db->GetSnapshot()};
  rocksdb::ReadOptions ro;
  ro.snapshot = guard.snap;
  rocksdb::ReadOptions walk = ro;
  walk.fill_cache = false;  // a one-off pass over everything

  // From the anchor (contract §9): events 1..anchor were archived; the first live event's
  // prev is the anchor's hash. Entries at or before it that an interrupted purge left are
  // not the live log's and are not counted.
  const log_anchor anchor = detail::read_anchor(s, ro);
  r.anchor = anchor.seq;
  std::array<std::uint64_t, detail::index_kind_count> expected{};
  std::uint64_t expected_starts = 0;
  std::string prev = anchor.seq > 0 ? anchor.hash : detail::zero_hash();
  std::string probe;
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(walk, s.cf[detail::cf_events]));
  for (it->Seek(slice(detail::seq_key(anchor.seq + 1))); it->Valid(); it->Next()) {
    const engine::event_seq want = anchor.seq + r.checked + 1;
    auto seq = detail::parse_seq_key(view(it->key()));
    if (!seq) return bad(r, want, "events key '" + printable(view(it->key())) + "' is not a seq");
    if (*seq != want)
      return bad(r, want,
                 "event " + std::to_string(want) + " is missing (the next stored is " + std::to_string(*seq) + ")");
    const std::string_view raw = view(it->value());
    auto ev = engine::decode_event(raw);
    if (!ev)
      return bad(r, want, "event " + std::to_string(want) + " does not decode: " +
                              std::string(engine::to_string(ev.error())));
    if (ev->seq != want)
      return bad(r, want, "event " + std::to_string(want) + " says seq " + std::to_string(ev->seq));
    if (ev->prev_hash != prev) {
      if (want == 1) return bad(r, 1, "event 1: prev is not 64 zeros");
      if (want == anchor.seq + 1)
        return bad(r, want, "event " + std::to_string(want) + ": prev is not the anchor's hash (the hash of archived "
                                                              "event " + std::to_string(anchor.seq) + ")");
      return bad(r, want - 1,
                 "event " + std::to_string(want - 1) + " does not hash to the prev stored in event " +
                     std::to_string(want) + " (event " + std::to_string(want - 1) + " was changed, or that prev)");
    }
    std::string scratch;
    const auto ids = detail::ids_of(*ev, scratch);
    for (int k = 0; k < detail::index_kind_count; ++k) {
      const auto kind = static_cast<detail::index_kind>(k);
      for (std::string_view id : ids.of[k]) {
        auto st = s.db->Get(ro, s.cf[detail::index_cf(kind)], slice(detail::index_key(id, want)), &probe);
        if (st.IsNotFound())
          return bad(r, want, "event " + std::to_string(want) + " has no " + std::string(detail::to_string(kind)) +
                                  " entry for '" + printable(id) + "'");
        if (!st.ok()) return bad(r, want, std::string(detail::to_string(kind)) + ": " + st.ToString());
        ++expected[k];
      }
    }
    if (auto sk = detail::start_key_of(*ev)) {  // the idempotency key of an accepted /start
      auto st = s.db->Get(ro, s.cf[detail::cf_by_start], slice(*sk), &probe);
      if (st.IsNotFound())
        return bad(r, want, "event " + std::to_string(want) + " has no by_start entry for its clientCorrelator");
      if (!st.ok()) return bad(r, want, "by_start: " + st.ToString());
      if (probe != ev->call_id)
        return bad(r, want, "event " + std::to_string(want) + ": its by_start entry names call '" + printable(probe) +
                                "', not '" + printable(ev->call_id) + "'");
      ++expected_starts;
    }
    prev = schemas::to_hex(schemas::sha256(raw));
    ++r.checked;
    r.last_seq = want;
    if (progress && r.checked % progress_every == 0) progress(r.checked);
  }
  if (!it->status().ok()) return bad(r, anchor.seq + r.checked + 1, "reading events: " + it->status().ToString());
  if (progress) progress(r.checked);

  for (int k = 0; k < detail::index_kind_count; ++k) {
    const auto kind = static_cast<detail::index_kind>(k);
    std::uint64_t count = 0;
    std::unique_ptr<rocksdb::Iterator> ix(s.db->NewIterator(walk, s.cf[detail::index_cf(kind)]));
    for (ix->SeekToFirst(); ix->Valid(); ix->Next()) {
      if (anchor.seq > 0) {
        auto entry = detail::parse_index_key(view(ix->key()));
        if (entry && entry->seq <= anchor.seq) continue;
      }
      ++count;
    }
    if (!ix->status().ok()) return bad(r, 0, std::string(detail::to_string(kind)) + ": " + ix->status().ToString());
    if (count != expected[k]) return find_stray(s, ro, kind, anchor.seq, r);
  }
  // by_start outlives archiving: an entry whose call was archived is checked against the
  // call's archived state (its from and clientCorrelator), the others are counted against
  // the live log's /starts.
  std::uint64_t starts = 0;
  std::unique_ptr<rocksdb::Iterator> bs(s.db->NewIterator(walk, s.cf[detail::cf_by_start]));
  for (bs->SeekToFirst(); bs->Valid(); bs->Next()) {
    if (anchor.seq > 0) {
      const std::string_view call_id = view(bs->value());
      if (auto a = detail::read_archived(s, ro, call_id); a && a->state.start_seq <= anchor.seq) {
        if (!a->state.client_correlator ||
            detail::start_key(a->state.from, *a->state.client_correlator) != view(bs->key()))
          return bad(r, a->state.start_seq, "by_start entry '" + printable(view(bs->key())) + "' -> archived call '" +
                                                printable(call_id) + "': the call's from and clientCorrelator differ");
        continue;
      }
    }
    ++starts;
  }
  if (!bs->status().ok()) return bad(r, 0, "by_start: " + bs->status().ToString());
  if (starts != expected_starts) return find_stray_start(s, ro, anchor.seq, r);
  return r;
}

}  // namespace storage
