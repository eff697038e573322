// `verify`: the storage walk (seqs without gap, records decode, hash chain, indexes
// both ways), then the persisted call state against a fold of the log up to its seq.
#include <cstdio>

#include "schemas/json_writer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/fold.hpp"

namespace cli {

int cmd_verify(const global_options& g, const verify_args& a) {
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();

  storage::verify_report report;
  {
    progress prog(g, "verifying", log.last_seq());
    report = log.verify([&](std::uint64_t n) { prog.update(n); });
  }
  state_check snap;
  if (report.ok && !a.no_state) {
    progress prog(g, "folding up to the persisted state", 0);
    fold_options o;
    o.check_chain = false;  // just checked
    o.stop_at_state = true;
    o.prog = &prog;
    fold_result f = fold_log(log, o);
    snap = f.state;
    if (f.broken) {  // the log changed under us, or a record went bad since the walk
      report.ok = false;
      report.first_bad = f.broken->seq;
      report.problem = f.broken->problem;
    }
  }
  const bool ok = report.ok && snap.ok;

  if (g.json) {
    schemas::json_writer w;
    w.begin_object().field("ok", ok).field("checked", report.checked).field("lastSeq", report.last_seq);
    if (!report.ok) w.field("firstBad", report.first_bad).field("problem", std::string_view(report.problem));
    w.key("state");
    if (!snap.compared) {
      w.null();
    } else {
      w.begin_object().field("seq", snap.seq).field("calls", static_cast<std::uint64_t>(snap.calls));
      w.field("ok", snap.ok);
      if (!snap.ok)
        w.field("differingCalls", static_cast<std::uint64_t>(snap.differing))
            .field("problem", std::string_view(snap.problem));
      w.end_object();
    }
    w.end_object();
    std::printf("%s\n", w.str().c_str());
  } else if (!report.ok) {
    std::printf("BROKEN at seq %llu: %s\n", static_cast<unsigned long long>(report.first_bad), report.problem.c_str());
  } else {
    if (snap.ok)
      std::printf("OK: %llu events, seq 1..%llu, hash chain and indexes intact\n",
                  static_cast<unsigned long long>(report.checked), static_cast<unsigned long long>(report.last_seq));
    else
      std::printf("BROKEN: the persisted state at seq %llu disagrees with the log (%s differ): %s\n",
                  static_cast<unsigned long long>(snap.seq), counted(snap.differing, "call").c_str(), snap.problem.c_str());
    if (a.no_state)
      std::printf("persisted state: not checked (--no-state)\n");
    else if (!snap.compared)
      std::printf("persisted state: none\n");
    else if (snap.ok)
      std::printf("persisted state: seq %llu agrees with the log (%s)\n", static_cast<unsigned long long>(snap.seq),
                  counted(snap.calls, "call").c_str());
  }
  return ok ? exit_ok : exit_check_failed;
}

}  // namespace cli
