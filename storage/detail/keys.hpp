#pragma once
// Key encodings of the log's column families (drawn in storage/README.md) and the
// index entries an event gets. Pure functions, safe from any thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/event_store.hpp"
#include "engine/types.hpp"

namespace rocksdb {
class WriteBatch;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace storage::detail {

// 8 bytes, big-endian, so that byte order is seq order.
inline constexpr std::size_t seq_key_size = 8;
std::string seq_key(engine::event_seq seq);
// nullopt unless `key` is exactly 8 bytes.
std::optional<engine::event_seq> parse_seq_key(std::string_view key) noexcept;

// Index key: id + '\0' + seq_key(seq). The prefix of all entries of one id is
// id + '\0'; an entry belongs to that id only when it is exactly 8 bytes longer
// than the prefix, which keeps ids that contain '\0' (untrusted input) apart.
std::string index_prefix(std::string_view id);
std::string index_key(std::string_view id, engine::event_seq seq);
// The same key, written into `out` (its buffer reused): the writer's hot path.
void assign_index_key(std::string& out, std::string_view id, std::string_view seq_key_bytes);

struct index_entry {
  std::string_view id;
  engine::event_seq seq = 0;
};
// nullopt for a key that is not id + '\0' + 8 bytes.
std::optional<index_entry> parse_index_key(std::string_view key) noexcept;

// by_start key: MO party (from, or a gateway's "gw:<sub>") + '\0' + clientCorrelator (value: the call id). MSISDNs hold no
// '\0' (normalized by transport), so the first '\0' ends `from`.
std::string start_key(std::string_view from, std::string_view client_correlator);
// The start key an event writes: accepted, not a repeat, /start with a clientCorrelator.
std::optional<std::string> start_key_of(const engine::event& e);

// The key in `calls` that holds the seq the persisted call state is the fold of (no
// call id is empty).
inline constexpr std::string_view state_seq_key = "";

// The index families, in the order of index_ids::of.
enum class index_kind : std::uint8_t { by_call, by_msisdn, by_txn };
inline constexpr int index_kind_count = 3;
std::string_view to_string(index_kind k) noexcept;

// The ids an event is indexed under, one list per index_kind, each without
// duplicates or empty ids. by_msisdn: the distinct non-empty of event.msisdn,
// event.from and event.to, and a gateway's call's gateway_party(event.gateway). Only /start events carry from/to; other events do not
// carry the call's numbers, so they are indexed under the actor's msisdn alone.
struct index_ids {
  std::vector<std::string_view> of[index_kind_count];
};
// `scratch` holds an id made for the event (a pusher event's pusher_index_id, a gateway's
// party); the views
// may point into it, so it must outlive the result.
index_ids ids_of(const engine::event& e, std::string& scratch);

// The by_call id of a pusher event's device (contract §13): "\x01" + 32 hex of SHA-256(sub
// NUL device_id). No call id starts with 0x01, so a device's registration history is one
// by_call range of its own (what a failed write's scrub folds back).
std::string pusher_index_id(std::string_view sub, std::string_view device_id);

// The key in `calls` of a device's persisted push registration: "\x01p" + the same hex.
// Sorts before every call id and after the state seq key "".
std::string pusher_state_key(std::string_view sub, std::string_view device_id);
// Every key in `calls` that is not a call's starts with this byte: "\x01p" a push
// registration, "\x01s" a number's settings.
inline constexpr char side_state_prefix = '\x01';

// A number's settings (contract §10): its by_call id (a settings event's history is one
// by_call range, like a device's registrations) and its key in `calls`, both
// "\x01s" + the number (digits, so never a pusher's hex).
std::string settings_key(std::string_view msisdn);

// Writes what a batch changed besides calls (registrations, settings) into `wb`'s
// `calls` family: a Put for each record as it is now, a Delete for each removed.
void write_side(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* calls, const engine::side_changes& side);

// True when `e` names `id` for index `k` (what an index entry must point at).
bool names(const engine::event& e, index_kind k, std::string_view id);

}  // namespace storage::detail
