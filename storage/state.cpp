#include "storage/state.hpp"

#include <limits>
#include <set>
#include <vector>

namespace storage {

schemas::result<loaded_state, std::string> load_state(event_log& log) {
  loaded_state out;
  auto p = log.load_persisted();
  if (!p) return schemas::failure{"reading the persisted calls: " + p.error().detail};
  out.persisted_seq = p->seq;
  out.persisted_calls = p->calls.size();
  for (auto& c : p->calls) out.table.restore(std::move(c), p->seq);
  for (auto& pu : p->pushers) out.table.restore_pusher(std::move(pu));
  for (auto& st : p->settings) out.table.restore_settings(std::move(st));
  out.table.restore_last_seq(p->seq);

  std::set<std::string> changed;
  std::set<std::pair<std::string, std::string>> devices;
  std::set<std::string> numbers;  // whose settings the folded events changed
  auto st = log.scan(p->seq + 1, std::numeric_limits<engine::event_seq>::max(),
                     [&](const engine::event& e, std::string_view) {
                       out.table.apply(e);
                       ++out.folded_events;
                       if (e.accepted() && !e.noop && !e.call_id.empty()) changed.insert(e.call_id);
                       if (e.accepted() && !e.noop && engine::is_pusher_action(e.act) && e.push)
                         devices.emplace(e.push->sub, e.push->device_id);
                       if (e.accepted() && !e.noop && e.act == engine::action::settings && e.settings)
                         numbers.insert(e.settings->msisdn);
                       return true;
                     });
  if (!st) return schemas::failure{"event " + std::to_string(st.error().seq) + " unreadable: " + st.error().detail};
  const engine::event_seq last = log.last_seq();
  if (out.table.last_seq() != last)
    return schemas::failure{"folded up to seq " + std::to_string(out.table.last_seq()) + " but the log ends at " +
                            std::to_string(last)};
  if (out.folded_events > 0 && !log.is_reader()) {
    std::vector<engine::call_change> changes;
    changes.reserve(changed.size());
    for (const auto& id : changed) {
      const engine::call_state* c = out.table.find(id);
      changes.push_back({id, c ? std::optional<engine::call_state>(*c) : std::nullopt});
    }
    engine::side_changes side;
    for (const auto& [sub, device] : devices) {
      const engine::pusher* p = out.table.pushers().find(sub, device);
      side.pushers.push_back({sub, device, p ? std::optional<engine::pusher>(*p) : std::nullopt});
    }
    for (const auto& n : numbers) {
      const engine::number_settings* st = out.table.settings().find(n);
      side.settings.push_back({n, st ? std::optional<engine::number_settings>(*st) : std::nullopt});
    }
    if (auto w = log.persist_calls(changes, last, side); !w) return schemas::failure{w.error().detail};
  }
  return out;
}

}  // namespace storage
