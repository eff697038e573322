// Delivery cursors and the in-order reads of the dispatchers (contract §13): the
// engine::delivery_source side of event_log.
#include <rocksdb/db.h>

#include "storage/detail/keys.hpp"
#include "storage/detail/log_state.hpp"
#include "storage/detail/rocks.hpp"
#include "storage/event_log.hpp"

namespace storage {

using detail::slice;
using detail::view;

std::vector<engine::event> event_log::events_after(engine::event_seq after, std::size_t limit) const {
  std::vector<engine::event> out;
  if (limit == 0 || after == std::numeric_limits<engine::event_seq>::max()) return out;
  out.reserve(std::min<std::size_t>(limit, 1024));
  const auto st = scan(after + 1, std::numeric_limits<engine::event_seq>::max(), [&](const engine::event& e, auto) {
    out.push_back(e);
    return out.size() < limit;
  });
  if (!st) s_->warn("delivery read after event " + std::to_string(after) + ": " + st.error().detail);
  return out;
}

std::map<std::string, engine::event_seq> event_log::cursors() const {
  std::map<std::string, engine::event_seq> out;
  detail::read_guard g(*s_);
  if (!g.ready) return out;
  std::unique_ptr<rocksdb::Iterator> it(s_->db->NewIterator({}, s_->cf[detail::cf_meta]));
  for (it->Seek(slice(detail::cursor_prefix)); it->Valid(); it->Next()) {
    const std::string_view key = view(it->key());
    if (!key.starts_with(detail::cursor_prefix)) break;
    if (auto seq = detail::parse_seq_key(view(it->value())))
      out.emplace(std::string(key.substr(detail::cursor_prefix.size())), *seq);
    else
      s_->warn("cursor " + std::string(key) + " is not 8 bytes: ignored");
  }
  return out;
}

bool event_log::set_cursor(std::string_view name, std::optional<engine::event_seq> seq) {
  if (s_->is_reader()) return false;
  std::string key(detail::cursor_prefix);
  key += name;
  // On the writer thread, in order with the appends (it alone writes).
  return detail::post_to_writer(*s_, [s = s_.get(), key = std::move(key), seq] { detail::write_cursor(*s, key, seq); });
}

}  // namespace storage
