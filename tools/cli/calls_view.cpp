#include "tools/cli/calls_view.hpp"

#include <fmt/format.h>

#include "engine/codec.hpp"
#include "tools/cli/common.hpp"
#include "tools/cli/table.hpp"

namespace cli {

void print_calls(std::FILE* out, const std::vector<const engine::call_state*>& calls) {
  using al = table::align;
  table t({{"CALL"}, {"FROM"}, {"TO"}, {"STATUS"}, {"CREATED"}, {"ANSWERED"}, {"ENDED"}, {"END REASON", al::left, 24},
           {"OFFER"}, {"HELD BY"}, {"EVENTS", al::right}, {"LAST SEQ", al::right}});
  auto when = [](const std::optional<engine::epoch_ms>& t) { return t ? format_time(*t) : std::string("-"); };
  for (const engine::call_state* c : calls) {
    std::string offer = "-";
    if (c->offer) offer = fmt::format("{} by {}", engine::to_string(c->offer->kind), engine::to_string(c->offer->by));
    t.add({c->call_id, c->from, c->to, std::string(engine::to_string(c->status)), format_time(c->created_at),
           when(c->connected_at), when(c->ended_at), c->end_reason.value_or("-"), offer,
           c->held_by ? std::string(engine::to_string(*c->held_by)) : "-", std::to_string(c->event_count),
           std::to_string(c->last_seq)});
  }
  t.print(out);
}

void write_calls_json(schemas::json_writer& w, const std::vector<const engine::call_state*>& calls,
                      std::string_view base_path) {
  w.begin_array();
  for (const engine::call_state* c : calls) engine::write_call_view(w, *c, base_path);
  w.end_array();
}

}  // namespace cli
