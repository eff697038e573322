// `replay`: folds the log with the engine's own apply, checks seqs and the hash chain
// on the way, and compares the fold with the persisted call state; `--until SEQ|TIME`
// stops early and shows the calls as they were then.
#include <algorithm>
#include <map>

#include "schemas/json_writer.hpp"
#include "tools/cli/calls_view.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"

namespace cli {

namespace {

std::vector<const engine::call_state*> pick_calls(const engine::call_table& t, const replay_args& a) {
  std::vector<const engine::call_state*> out;
  if (!a.call_id.empty()) {
    if (const auto* c = t.find(a.call_id)) out.push_back(c);
    return out;
  }
  for (const auto& [id, c] : t.calls())
    if (a.all || !engine::is_ended(c.status)) out.push_back(&c);
  std::sort(out.begin(), out.end(), [](auto* x, auto* y) { return x->start_seq < y->start_seq; });
  return out;
}

void write_state_json(schemas::json_writer& w, const state_check& s) {
  w.key("state");
  if (!s.present) {
    w.null();
    return;
  }
  w.begin_object().field("seq", s.seq).field("compared", s.compared);
  if (s.compared) {
    w.field("calls", static_cast<std::uint64_t>(s.calls)).field("ok", s.ok);
    if (!s.ok)
      w.field("differingCalls", static_cast<std::uint64_t>(s.differing)).field("problem", std::string_view(s.problem));
  }
  w.end_object();
}

}  // namespace

int cmd_replay(const global_options& g, const replay_args& a) {
  fold_options o;
  if (!a.until.empty()) {
    auto pos = parse_position(a.until, now_ms());
    if (!pos) {
      complain("--until {}: not a sequence number or a time (ISO 8601, @epoch-ms, -15m)", a.until);
      return exit_usage;
    }
    if (pos->seq) o.until_seq = *pos->seq;
    o.until_time = pos->time;
  }
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();
  auto hist = history::open(log, g.archives);  // archive files (--archive), then the live log
  if (!hist) return exit_check_failed;
  hist->note_missing("the calls");

  fold_result f;
  {
    progress prog(g, "replaying", std::min(log.last_seq(), o.until_seq));
    o.prog = &prog;
    f = fold_log(*hist, o);
  }
  std::map<std::string_view, std::uint64_t> statuses;
  for (const auto& [id, c] : f.table.calls()) ++statuses[engine::to_string(c.status)];
  const bool stopped_early = !a.until.empty();
  const bool show_calls = stopped_early || a.all || !a.call_id.empty();
  const auto calls = show_calls ? pick_calls(f.table, a) : std::vector<const engine::call_state*>{};
  const bool ok = !f.broken && f.state.ok;
  const double rate = f.events_per_second();

  if (g.json) {
    schemas::json_writer w;
    w.begin_object().field("ok", ok).field("events", f.events).field("lastSeq", f.last_seq);
    w.field("logLastSeq", f.log_last_seq);
    if (stopped_early) {
      w.key("until").begin_object();
      if (o.until_time) w.field("time", *o.until_time).field("iso", std::string_view(format_time(*o.until_time)));
      else w.field("seq", o.until_seq);
      w.end_object();
    }
    w.field("calls", static_cast<std::uint64_t>(f.table.size()));
    w.field("active", static_cast<std::uint64_t>(f.table.active()));
    w.field("retired", static_cast<std::uint64_t>(f.table.retired()));
    w.key("statuses").begin_object();
    for (const auto& [s, n] : statuses) w.field(s, n);
    w.end_object();
    w.field("rejected", f.rejected).field("noop", f.noops);
    write_state_json(w, f.state);
    if (f.broken)
      w.key("broken").begin_object().field("seq", f.broken->seq).field("problem", std::string_view(f.broken->problem)).end_object();
    if (f.stopped) w.field("interrupted", true);
    w.field("elapsedMs", static_cast<std::int64_t>(f.seconds * 1000));
    w.field("stateCompareMs", static_cast<std::int64_t>(f.state.seconds * 1000));
    w.field("eventsPerSecond", static_cast<std::int64_t>(rate));
    if (show_calls) {
      w.key("callStates");
      write_calls_json(w, calls, a.base_path);
    }
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else {
    std::printf("replayed %llu events (seq 1..%llu of %llu) in %.3f s: %.0f events/s\n",
                static_cast<unsigned long long>(f.events), static_cast<unsigned long long>(f.last_seq),
                static_cast<unsigned long long>(f.log_last_seq), f.seconds - f.state.seconds, rate);
    if (stopped_early) {
      if (o.until_time) std::printf("until %s: the calls as they were after seq %llu\n", format_time(*o.until_time).c_str(),
                                    static_cast<unsigned long long>(f.last_seq));
      else std::printf("until seq %llu: the calls as they were after seq %llu\n",
                       static_cast<unsigned long long>(o.until_seq), static_cast<unsigned long long>(f.last_seq));
    }
    std::printf("calls: %zu (%zu not ended, %zu retired from memory); events: %llu rejected, %llu noop\n",
                f.table.size(), f.table.active(), f.table.retired(),
                static_cast<unsigned long long>(f.rejected), static_cast<unsigned long long>(f.noops));
    if (!statuses.empty()) {
      std::string line = "statuses:";
      for (const auto& [s, n] : statuses) line += fmt::format(" {} {}", s, n);
      std::printf("%s\n", line.c_str());
    }
    const auto& s = f.state;
    if (!s.present) std::printf("persisted state: none\n");
    else if (!s.compared) std::printf("persisted state: seq %llu not reached, not compared\n", static_cast<unsigned long long>(s.seq));
    else if (s.ok) std::printf("persisted state: seq %llu agrees with the log (%s, compared in %.3f s)\n",
                               static_cast<unsigned long long>(s.seq), counted(s.calls, "call").c_str(), s.seconds);
    else std::printf("MISMATCH: the persisted state at seq %llu disagrees with the log (%s differ): %s\n",
                     static_cast<unsigned long long>(s.seq), counted(s.differing, "call").c_str(), s.problem.c_str());
    if (f.stopped)
      std::printf("INTERRUPTED after seq %llu: the figures above cover the log up to there\n",
                  static_cast<unsigned long long>(f.last_seq));
    if (f.broken)
      std::printf("BROKEN at seq %llu: %s (replay stopped there)\n", static_cast<unsigned long long>(f.broken->seq),
                  f.broken->problem.c_str());
    if (show_calls) {
      std::printf("\n");
      if (calls.empty())
        std::printf(a.call_id.empty() ? "(no call to show)\n" : "(no such call)\n");
      else
        print_calls(stdout, calls);
    }
  }
  if (!ok) return exit_check_failed;
  if (!a.call_id.empty() && calls.empty()) return exit_not_found;
  return exit_ok;
}

}  // namespace cli
