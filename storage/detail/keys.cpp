#include "storage/detail/keys.hpp"

#include <rocksdb/write_batch.h>

#include "engine/codec.hpp"
#include "engine/pushers.hpp"
#include "engine/settings.hpp"
#include "schemas/digest.hpp"
#include "storage/detail/rocks.hpp"

#include <algorithm>

namespace storage::detail {

std::string seq_key(engine::event_seq seq) {
  std::string k(seq_key_size, '\0');
  for (std::size_t i = 0; i < seq_key_size; ++i)
    k[seq_key_size - 1 - i] = static_cast<char>((seq >> (8 * i)) & 0xff);
  return k;
}

std::optional<engine::event_seq> parse_seq_key(std::string_view key) noexcept {
  if (key.size() != seq_key_size) return std::nullopt;
  engine::event_seq seq = 0;
  for (char c : key) seq = (seq << 8) | static_cast<unsigned char>(c);
  return seq;
}

std::string index_prefix(std::string_view id) {
  std::string k;
  k.reserve(id.size() + 1 + seq_key_size);
  k.append(id);
  k.push_back('\0');
  return k;
}

void assign_index_key(std::string& out, std::string_view id, std::string_view seq_key_bytes) {
  out.assign(id);
  out.push_back('\0');
  out.append(seq_key_bytes);
}

std::string index_key(std::string_view id, engine::event_seq seq) {
  std::string k;
  assign_index_key(k, id, seq_key(seq));
  return k;
}

std::optional<index_entry> parse_index_key(std::string_view key) noexcept {
  if (key.size() < 1 + seq_key_size) return std::nullopt;
  const std::size_t sep = key.size() - seq_key_size - 1;
  if (key[sep] != '\0') return std::nullopt;
  return index_entry{key.substr(0, sep), *parse_seq_key(key.substr(sep + 1))};
}

std::string start_key(std::string_view from, std::string_view client_correlator) {
  std::string k;
  k.reserve(from.size() + 1 + client_correlator.size());
  k.append(from).push_back('\0');
  k.append(client_correlator);
  return k;
}

std::optional<std::string> start_key_of(const engine::event& e) {
  if (e.act != engine::action::start || !e.accepted() || e.noop || !e.client_correlator) return std::nullopt;
  return start_key(engine::mo_party(e.from, e.gateway), *e.client_correlator);
}

std::string_view to_string(index_kind k) noexcept {
  switch (k) {
    case index_kind::by_call: return "by_call";
    case index_kind::by_msisdn: return "by_msisdn";
    case index_kind::by_txn: return "by_txn";
  }
  return "?";
}

namespace {
std::string device_digest(std::string_view sub, std::string_view device_id) {
  std::string both(sub);
  both.push_back('\0');
  both.append(device_id);
  return schemas::to_hex(schemas::sha256(both)).substr(0, 32);
}
}  // namespace

std::string pusher_index_id(std::string_view sub, std::string_view device_id) {
  return "\x01" + device_digest(sub, device_id);
}

std::string pusher_state_key(std::string_view sub, std::string_view device_id) {
  return "\x01p" + device_digest(sub, device_id);
}

std::string settings_key(std::string_view msisdn) { return "\x01s" + std::string(msisdn); }

void write_side(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* calls, const engine::side_changes& side) {
  for (const auto& p : side.pushers) {
    const std::string k = pusher_state_key(p.sub, p.device_id);
    if (p.after)
      wb.Put(calls, slice(k), slice(engine::encode_pusher(*p.after)));
    else
      wb.Delete(calls, slice(k));
  }
  for (const auto& s : side.settings) {
    const std::string k = settings_key(s.msisdn);
    if (s.after)
      wb.Put(calls, slice(k), slice(engine::encode_settings_record(*s.after)));
    else
      wb.Delete(calls, slice(k));
  }
}

index_ids ids_of(const engine::event& e, std::string& scratch) {
  index_ids ids;
  auto add = [](std::vector<std::string_view>& v, std::string_view id) {
    if (!id.empty() && std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
  };
  add(ids.of[static_cast<int>(index_kind::by_call)], e.call_id);
  if (engine::is_pusher_action(e.act) && e.push) {
    scratch = pusher_index_id(e.push->sub, e.push->device_id);
    add(ids.of[static_cast<int>(index_kind::by_call)], scratch);
  } else if (e.act == engine::action::settings && e.settings) {
    scratch = settings_key(e.settings->msisdn);
    add(ids.of[static_cast<int>(index_kind::by_call)], scratch);
  }
  auto& m = ids.of[static_cast<int>(index_kind::by_msisdn)];
  add(m, e.msisdn);
  add(m, e.from);
  add(m, e.to);
  // A gateway's call is indexed under its gateway's party too (contract §11): a gateway's
  // socket replays it with ?since=. (Pusher events, the other user of `scratch`, belong
  // to no call and so to no gateway.)
  if (!e.gateway.empty() && !engine::is_pusher_action(e.act)) {
    scratch = engine::gateway_party(e.gateway);
    add(m, scratch);
  }
  add(ids.of[static_cast<int>(index_kind::by_txn)], e.txn_id);
  return ids;
}

bool names(const engine::event& e, index_kind k, std::string_view id) {
  if (id.empty()) return false;
  switch (k) {
    case index_kind::by_call:
      return e.call_id == id ||
             (engine::is_pusher_action(e.act) && e.push && pusher_index_id(e.push->sub, e.push->device_id) == id) ||
             (e.act == engine::action::settings && e.settings && settings_key(e.settings->msisdn) == id);
    case index_kind::by_msisdn:
      return e.msisdn == id || e.from == id || e.to == id ||
             (!e.gateway.empty() && !engine::is_pusher_action(e.act) && engine::gateway_party(e.gateway) == id);
    case index_kind::by_txn: return e.txn_id == id;
  }
  return false;
}

}  // namespace storage::detail
