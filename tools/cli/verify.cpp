// `verify`: the archives given (--archive: each read with every check, and with the log
// one chain: same log, no gap, the last ending at the anchor), the storage walk of the
// live log from its anchor (seqs without gap, records decode, hash chain, indexes both
// ways), then the persisted call state against a fold of the log up to its seq.
#include <cstdio>

#include "schemas/json_writer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"

namespace cli {

int cmd_verify(const global_options& g, const verify_args& a) {
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();

  // The archives first: oldest events first, as one chain with the live log.
  auto hist = history::open(log, g.archives);
  if (!hist) return exit_check_failed;
  struct checked_archive {
    const archive_file* file;
    std::string problem;  // empty: ok
  };
  std::vector<checked_archive> archives;
  std::string archive_problem;
  for (const auto& a : hist->archives()) {
    progress prog(g, "reading " + a.path, a.header.events);
    std::uint64_t n = 0;
    auto r = storage::read_archive(a.path, [&](const engine::event&, std::string_view) {
      if ((++n & 4095) == 0) prog.update(n);
      return !should_stop();
    });
    archives.push_back(checked_archive{&a, r ? std::string() : r.error()});
    if (!r) {
      archive_problem = r.error();
      break;
    }
  }

  storage::verify_report report;
  if (!archive_problem.empty()) {
    report.ok = false;
    report.problem = archive_problem;
  } else {
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
    auto live = history::open(log, {});  // the persisted calls all started after the anchor
    if (!live) return exit_check_failed;
    fold_result f = fold_log(*live, o);
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
    w.field("anchor", std::uint64_t{hist->anchor().seq});
    if (!report.ok) w.field("firstBad", report.first_bad).field("problem", std::string_view(report.problem));
    w.key("archives").begin_array();
    for (const auto& a : archives) {
      w.begin_object().field("path", std::string_view(a.file->path));
      w.field("firstSeq", std::uint64_t{a.file->header.first_seq}).field("lastSeq", std::uint64_t{a.file->header.last_seq});
      w.field("ok", a.problem.empty());
      if (!a.problem.empty()) w.field("problem", std::string_view(a.problem));
      w.end_object();
    }
    w.end_array();
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
  } else if (!archive_problem.empty()) {
    std::printf("BROKEN archive: %s\n", archive_problem.c_str());
  } else if (!report.ok) {
    std::printf("BROKEN at seq %llu: %s\n", static_cast<unsigned long long>(report.first_bad), report.problem.c_str());
  } else {
    for (const auto& a : archives)
      std::printf("OK: archive %s, events %llu..%llu, chain intact\n", a.file->path.c_str(),
                  static_cast<unsigned long long>(a.file->header.first_seq),
                  static_cast<unsigned long long>(a.file->header.last_seq));
    if (report.anchor > 0)
      std::printf("anchor: events 1..%llu archived%s\n", static_cast<unsigned long long>(report.anchor),
                  archives.empty() ? " (give their files with --archive to check them too)"
                  : hist->first_seq() > 1 ? " (the archives given start later)"
                                          : "; the archives and the live log form one chain");
    if (snap.ok)
      std::printf("OK: %llu events, seq %llu..%llu, hash chain and indexes intact\n",
                  static_cast<unsigned long long>(report.checked), static_cast<unsigned long long>(report.anchor + 1),
                  static_cast<unsigned long long>(report.last_seq));
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
