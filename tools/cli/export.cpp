// `export`: the stored records as JSON lines, byte for byte (engine/codec.hpp layout;
// `prev` included, so an export can be checked against the chain elsewhere).
// --from/--to select by seq, --since/--until by time, --call one call's events.
#include <algorithm>
#include <limits>

#include "tools/cli/commands.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"

namespace cli {

int cmd_export(const global_options& g, const export_args& a) {
  const auto window = parse_window(a.since, a.until);
  if (!window) return exit_usage;
  const auto [since, until] = *window;
  const engine::event_seq from = a.from_seq == 0 ? 1 : a.from_seq;
  const engine::event_seq to = a.to_seq == 0 ? std::numeric_limits<engine::event_seq>::max() : a.to_seq;
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();
  auto hist = history::open(log, g.archives);  // archive files (--archive), then the live log
  if (!hist) return exit_check_failed;

  std::uint64_t done = 0;
  progress prog(g, "exporting", std::min(log.last_seq(), to) - std::min(log.last_seq(), from - 1));
  const auto emit = [&](const engine::event& e, std::string_view raw) {
    if ((++done & 4095) == 0) prog.update(done);
    if (e.seq < from || e.seq > to || (since && e.time < *since) || (until && e.time > *until)) return !should_stop();
    std::fwrite(raw.data(), 1, raw.size(), stdout);
    std::fputc('\n', stdout);
    return !should_stop();
  };
  std::optional<log_break> broken;
  if (!a.call_id.empty()) {
    if (!hist->archives().empty()) {  // archives have no index: scanned for the call
      auto st = hist->scan(std::max(from, hist->first_seq()), std::min(to, hist->anchor().seq),
                           [&](const engine::event& e, std::string_view raw) {
                             return e.call_id == a.call_id ? emit(e, raw) : !should_stop();
                           });
      if (!st) broken = log_break{st.error().seq, st.error().detail};
    }
    if (!broken) broken = read_events(log, log.seqs_by_call(a.call_id), emit);
  } else if (auto st = hist->scan(std::max(from, hist->first_seq()), to, emit); !st) {
    broken = log_break{st.error().seq, st.error().detail};
  }
  prog.finish();
  if (broken) {
    complain("BROKEN at seq {}: {}", broken->seq, broken->problem);
    return exit_check_failed;
  }
  return exit_ok;
}

}  // namespace cli
