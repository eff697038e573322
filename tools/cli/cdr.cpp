// `cdr`: one call detail record per call, from the fold of the whole log (the same
// fold as replay). CSV by default (contract §8 columns, then endedBy), JSON lines
// with --json. Ended calls only unless --all; --since/--until select on the start time.
#include <algorithm>
#include <unordered_map>

#include "schemas/json_writer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"

namespace cli {

namespace {

// The event that ended a call: who, when, why.
struct ending {
  engine::role by = engine::role::engine;
  engine::epoch_ms time = 0;
  std::optional<std::string> reason;
};

struct cdr_row {
  const engine::call_state* call = nullptr;
  std::optional<engine::epoch_ms> end;
  std::optional<std::string> end_reason;
  std::optional<engine::role> ended_by;
  engine::epoch_ms duration_ms = 0;  // answer to end; 0 when never answered
};

std::string csv(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int cmd_cdr(const global_options& g, const cdr_args& a) {
  const auto window = parse_window(a.since, a.until);
  if (!window) return exit_usage;
  const auto [since, until] = *window;
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();
  auto hist = history::open(log, g.archives);  // archive files (--archive), then the live log
  if (!hist) return exit_check_failed;
  hist->note_missing("the records");

  std::unordered_map<std::string, ending> endings;
  fold_options o;
  o.compare_state = false;  // replay and verify do that
  o.observe = [&](const engine::event& e, const engine::call_table&) {
    if (!e.accepted() || e.noop || !e.status_after || !engine::is_ended(*e.status_after)) return;
    if (e.status_before && engine::is_ended(*e.status_before)) return;
    // A /start that ends at once (the ringing cap, contract §3a) was ended by the engine.
    endings[e.call_id] = ending{e.act == engine::action::start ? engine::role::engine : e.actor_role, e.time, e.reason};
  };
  fold_result f;
  {
    progress prog(g, "folding", log.last_seq());
    o.prog = &prog;
    f = fold_log(*hist, o);
  }

  std::vector<cdr_row> rows;
  for (const auto& [id, c] : f.table.calls()) {
    if ((since && c.created_at < *since) || (until && c.created_at > *until)) continue;
    const bool ended = engine::is_ended(c.status);
    if (!ended && !a.all) continue;
    cdr_row r;
    r.call = &c;
    r.end = c.ended_at;
    r.end_reason = c.end_reason;
    if (auto it = endings.find(id); ended && it != endings.end()) {
      if (!r.end) r.end = it->second.time;
      if (!r.end_reason) r.end_reason = it->second.reason;
      r.ended_by = it->second.by;
    }
    if (c.connected_at && r.end) r.duration_ms = std::max<engine::epoch_ms>(0, *r.end - *c.connected_at);
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const cdr_row& x, const cdr_row& y) { return x.call->start_seq < y.call->start_seq; });

  // Contract §10 columns after the contract §8 ones: the number dialled, the diversions
  // ("from>to:reason" joined by ';'), where a transfer went, which call it took up, and
  // the meeting of an upgrade.
  auto diversions_text = [](const engine::call_state& c) {
    std::string s;
    for (const auto& d : c.diversions) {
      if (!s.empty()) s += ';';
      s += d.from + ">" + d.to + ":" + d.reason;
    }
    return s;
  };
  if (!g.json)
    std::printf("callId,from,to,start,answer,end,duration,finalStatus,endReason,endedBy,dialled,diversions,"
                "transferredTo,transferOf,meetingUri\n");
  for (const cdr_row& r : rows) {
    const engine::call_state& c = *r.call;
    if (g.json) {
      schemas::json_writer w;
      w.begin_object().field("callId", std::string_view(c.call_id)).field("from", std::string_view(c.from));
      w.field("to", std::string_view(c.to)).field("start", c.created_at);
      w.key("answer");
      c.connected_at ? w.value(*c.connected_at) : w.null();
      w.key("end");
      r.end ? w.value(*r.end) : w.null();
      w.field("durationMs", r.duration_ms).field("finalStatus", engine::to_string(c.status));
      w.key("endReason");
      r.end_reason ? w.value(std::string_view(*r.end_reason)) : w.null();
      w.key("endedBy");
      r.ended_by ? w.value(engine::to_string(*r.ended_by)) : w.null();
      w.field("dialled", std::string_view(c.dialled_number()));
      w.key("diversions").begin_array();
      for (const auto& d : c.diversions)
        w.begin_object().field("from", std::string_view(d.from)).field("to", std::string_view(d.to))
            .field("reason", std::string_view(d.reason)).field("time", d.time).end_object();
      w.end_array();
      w.key("transferredTo");
      c.transfer_to.empty() ? w.null() : w.value(std::string_view(c.transfer_to));
      w.key("transferOf");
      c.transfer_of.empty() ? w.null() : w.value(std::string_view(c.transfer_of));
      w.key("meetingUri");
      c.meeting_uri.empty() ? w.null() : w.value(std::string_view(c.meeting_uri));
      w.end_object();
      std::printf("%s\n", w.str().c_str());
    } else {
      std::printf("%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", csv(c.call_id).c_str(), csv(c.from).c_str(),
                  csv(c.to).c_str(), format_time(c.created_at).c_str(),
                  c.connected_at ? format_time(*c.connected_at).c_str() : "", r.end ? format_time(*r.end).c_str() : "",
                  format_seconds(r.duration_ms).c_str(), std::string(engine::to_string(c.status)).c_str(),
                  csv(r.end_reason.value_or("")).c_str(),
                  r.ended_by ? std::string(engine::to_string(*r.ended_by)).c_str() : "",
                  csv(c.dialled_number()).c_str(), csv(diversions_text(c)).c_str(), csv(c.transfer_to).c_str(),
                  csv(c.transfer_of).c_str(), csv(c.meeting_uri).c_str());
    }
  }
  if (f.stopped) complain("interrupted: the records cover the log up to seq {}", f.last_seq);
  if (f.broken) {
    complain("BROKEN at seq {}: {} (records cover the log before it)", f.broken->seq, f.broken->problem);
    return exit_check_failed;
  }
  return exit_ok;
}

}  // namespace cli
