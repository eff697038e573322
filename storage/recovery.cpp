// Getting back to a writable log after a failed write, without a restart.
//
// RocksDB stops writes after a failed WAL write or sync (background-error mode). We
// never resume it in place: after a failed WAL append its WAL writer keeps the error,
// DB::Resume() can report success all the same, and the next write through that writer
// aborts (Debian's librocksdb is built with assertions). Reopening starts a fresh WAL,
// and RocksDB's own wait for write_buffer_size of free space is not ours to keep.
// Reopening replays the WAL, and a batch
// whose fsync failed may be complete in it: that batch was reported failed to the
// reactor, so it must not come back. After any recovery we therefore delete every
// event past the last acknowledged seq, with its index entries, and put back the
// persisted state of every call those events had changed (contract §9).
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <rocksdb/write_batch.h>

#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "storage/detail/keys.hpp"
#include "engine/pushers.hpp"
#include "engine/settings.hpp"
#include "storage/detail/log_state.hpp"

namespace storage::detail {
namespace {

rocksdb::Status reopen(log_state& s) {
  std::unique_lock lk(s.db_mu);
  close_db(s);
  return open_writer_db(s);
}

// Calls `fn` with each event of by_call range `id` up to `last`, in log order: a call's
// events, a device's registrations (pusher_index_id), a number's settings (settings_key).
template <class Fn>
void for_each_indexed(log_state& s, const std::string& id, engine::event_seq last, Fn&& fn) {
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator({}, s.cf[cf_by_call]));
  const std::string prefix = index_prefix(id);
  for (it->Seek(slice(prefix)); it->Valid() && view(it->key()).starts_with(prefix); it->Next()) {
    auto entry = parse_index_key(view(it->key()));
    if (!entry || entry->id != id || entry->seq > last) continue;
    std::string raw;
    if (!s.db->Get({}, s.cf[cf_events], slice(seq_key(entry->seq)), &raw).ok()) continue;
    if (auto ev = engine::decode_event(raw)) fn(*ev);
  }
}

// The call folded from its events up to `last` (by_call), as the reactor had it.
std::optional<engine::call_state> fold_up_to(log_state& s, const std::string& call_id, engine::event_seq last) {
  std::vector<engine::event> events;
  for_each_indexed(s, call_id, last, [&](engine::event& e) { events.push_back(std::move(e)); });
  return engine::fold_call(events);
}

// What the acknowledged events up to `last` left of a device's push registration and of
// a number's settings: the record to put back, or nullopt to delete it.
std::optional<engine::pusher> pusher_up_to(log_state& s, const std::string& sub, const std::string& device,
                                           engine::event_seq last) {
  engine::pusher_directory dir;
  for_each_indexed(s, pusher_index_id(sub, device), last, [&](const engine::event& e) { dir.apply(e); });
  const engine::pusher* p = dir.find(sub, device);
  return p ? std::optional<engine::pusher>(*p) : std::nullopt;
}
std::optional<engine::number_settings> settings_up_to(log_state& s, const std::string& msisdn, engine::event_seq last) {
  engine::settings_directory dir;
  for_each_indexed(s, settings_key(msisdn), last, [&](const engine::event& e) { dir.apply(e); });
  const engine::number_settings* st = dir.find(msisdn);
  return st ? std::optional<engine::number_settings>(*st) : std::nullopt;
}

rocksdb::Status scrub_unacknowledged(log_state& s) {
  const engine::event_seq last = s.last_seq.load();
  rocksdb::WriteBatch wb;
  std::size_t removed = 0;
  std::set<std::string> changed;  // calls whose persisted state the removed events wrote
  std::set<std::pair<std::string, std::string>> devices;  // push registrations they wrote
  std::set<std::string> numbers;                          // settings they wrote
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator({}, s.cf[cf_events]));
  for (it->Seek(slice(seq_key(last + 1))); it->Valid(); it->Next()) {
    wb.Delete(s.cf[cf_events], it->key());
    ++removed;
    auto ev = engine::decode_event(view(it->value()));
    if (!ev) continue;
    std::string scratch;
    const index_ids ids = ids_of(*ev, scratch);
    for (int k = 0; k < index_kind_count; ++k)
      for (std::string_view id : ids.of[k])
        wb.Delete(s.cf[index_cf(static_cast<index_kind>(k))], slice(index_key(id, ev->seq)));
    if (auto sk = start_key_of(*ev)) wb.Delete(s.cf[cf_by_start], slice(*sk));
    if (ev->accepted() && !ev->noop && !ev->call_id.empty()) changed.insert(ev->call_id);
    if (ev->accepted() && !ev->noop && engine::is_pusher_action(ev->act) && ev->push)
      devices.emplace(ev->push->sub, ev->push->device_id);
    if (ev->accepted() && !ev->noop && ev->act == engine::action::settings && ev->settings)
      numbers.insert(ev->settings->msisdn);
  }
  if (!it->status().ok()) return it->status();
  if (removed == 0) return rocksdb::Status::OK();
  s.warn("removing " + std::to_string(removed) + " unacknowledged events after seq " + std::to_string(last) +
         " left by a failed write");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (auto st = s.db->Write(wo, &wb); !st.ok()) return st;

  // The persisted state those events wrote goes back to the fold of what was acknowledged.
  rocksdb::WriteBatch states;
  for (const auto& id : changed) {
    auto c = fold_up_to(s, id, last);
    if (c && !c->retired)
      states.Put(s.cf[cf_calls], slice(id), slice(engine::encode_call(*c)));
    else
      states.Delete(s.cf[cf_calls], slice(id));
  }
  engine::side_changes side;
  for (const auto& [sub, device] : devices) side.pushers.push_back({sub, device, pusher_up_to(s, sub, device, last)});
  for (const auto& n : numbers) side.settings.push_back({n, settings_up_to(s, n, last)});
  write_side(states, s.cf[cf_calls], side);
  std::string state_seq;
  if (s.db->Get({}, s.cf[cf_calls], slice(state_seq_key), &state_seq).ok()) {
    if (auto seq = parse_seq_key(state_seq); seq && *seq > last)
      states.Put(s.cf[cf_calls], slice(state_seq_key), slice(seq_key(last)));
  }
  return s.db->Write(wo, &states);
}

// Whether the disk of the log has room for it to go on (see log_options::resume_free_bytes).
bool has_room(const log_state& s) {
  std::error_code ec;
  const auto sp = std::filesystem::space(s.options.dir, ec);
  return !ec && sp.available >= s.options.resume_free_bytes;
}

}  // namespace

void recover(log_state& s) {
  // While the disk has no room, a reopen would fail too and take reads down with it:
  // keep failing writes (without touching RocksDB) until it has.
  if (!has_room(s)) {
    s.warn("the disk of the log is full: writes fail until space is freed");
    return;
  }
  s.warn("reopening the log after a failed write");
  rocksdb::Status st = reopen(s);
  if (st.ok()) st = scrub_unacknowledged(s);
  if (!st.ok()) {
    s.warn("recovery: " + st.ToString());
    return;
  }
  s.recovery_needed = false;
}

}  // namespace storage::detail
