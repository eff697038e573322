// `timeline CALLID`: every event of one call in order (through the by_call index),
// with what it did and the notifications it caused (engine::derive_notification, the
// function live delivery and replay use), then the call's state after the last one.
#include "engine/call_table.hpp"
#include "engine/codec.hpp"
#include "engine/notify.hpp"
#include "schemas/json_writer.hpp"
#include "tools/cli/calls_view.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/describe.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"
#include "tools/cli/table.hpp"

namespace cli {

namespace {

void write_notification_json(schemas::json_writer& w, const engine::notification& n, std::string_view base_path) {
  w.begin_object();
  w.key("frame").raw(engine::encode_notification(n, base_path));
  w.key("recipients").begin_array();
  for (const auto& r : n.recipients()) w.value(std::string_view(r));
  w.end_array();
  if (!n.exclude_device.empty())
    w.key("except").begin_object().field("sub", std::string_view(n.exclude_sub))
        .field("device", std::string_view(n.exclude_device)).end_object();
  w.end_object();
}

}  // namespace

int cmd_timeline(const global_options& g, const timeline_args& a) {
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();
  auto hist = history::open(log, g.archives);
  if (!hist) return exit_check_failed;
  // The call's archived events (a scan of the archives given: they have no index), then
  // the live log's through by_call.
  std::vector<std::pair<engine::event, std::string>> events;
  std::optional<log_break> broken;
  if (!hist->archives().empty()) {
    progress prog(g, "reading archives", hist->anchor().seq);
    auto st = hist->scan(hist->first_seq(), hist->anchor().seq, [&](const engine::event& e, std::string_view raw) {
      if ((e.seq & 4095) == 0) prog.update(e.seq);
      if (e.call_id == a.call_id) events.emplace_back(e, std::string(raw));
      return !should_stop();
    });
    if (!st) broken = log_break{st.error().seq, st.error().detail};
  }
  if (!broken)
    broken = read_events(log, log.seqs_by_call(a.call_id), [&](const engine::event& e, std::string_view raw) {
      events.emplace_back(e, std::string(raw));
      return true;
    });
  if (events.empty() && !broken) {
    if (hist->first_seq() > 1)
      complain("no event of call {} in the live log (events 1..{} were archived: give their files with --archive)",
               a.call_id, hist->first_seq() - 1);
    else
      complain("no event of call {} in the log", a.call_id);
    return exit_not_found;
  }

  using al = table::align;
  table t({{"TIME"}, {"SEQ", al::right}, {"ACTOR"}, {"ENDPOINT"}, {"OUTCOME"}, {"STATUS"}, {"TXN"}});
  schemas::json_writer w;
  w.begin_object().field("callId", std::string_view(a.call_id));
  w.key("events").begin_array();
  engine::call_table fold(engine::call_table::on_retire::keep);  // this call alone, retired or not
  for (const auto& [e, raw] : events) {
    fold.apply(e);
    const auto n = engine::derive_notification(e);
    if (g.json) {
      w.begin_object().key("record").raw(raw);
      w.key("notifications").begin_array();
      if (n) write_notification_json(w, *n, a.base_path);
      w.end_array().end_object();
      continue;
    }
    t.add({format_time(e.time), std::to_string(e.seq), actor_label(e), endpoint_label(e), outcome_label(e),
           status_label(e), e.txn_id});
    if (e.sdp) t.note("sdp: " + sdp_summary(*e.sdp));
    if (auto p = payload_label(e); !p.empty()) t.note(p);
    if (auto m = timers_label(e); !m.empty()) t.note("timers: " + m);
    if (n) t.note("=> " + notification_label(*n));
  }
  w.end_array();
  const engine::call_state* call = fold.find(a.call_id);

  if (g.json) {
    w.key("call");
    if (call) engine::write_call_view(w, *call, a.base_path);
    else w.null();
    w.field("ok", !broken);
    if (broken)
      w.key("broken").begin_object().field("seq", broken->seq).field("problem", std::string_view(broken->problem)).end_object();
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    if (call)
      std::printf("call %s from %s to %s: %s, %s\n\n", call->call_id.c_str(), call->from.c_str(), call->to.c_str(),
                  std::string(engine::to_string(call->status)).c_str(), counted(t.rows(), "event").c_str());
    else
      std::printf("call %s: never started (%s)\n\n", a.call_id.c_str(), counted(t.rows(), "event").c_str());
    t.print(stdout);
    if (call) {
      std::printf("\n");
      print_calls(stdout, {call});
    }
    if (broken)
      std::printf("BROKEN at seq %llu: %s\n", static_cast<unsigned long long>(broken->seq), broken->problem.c_str());
  }
  return broken ? exit_check_failed : exit_ok;
}

}  // namespace cli
