// `audit`: who did what. Events selected by number (--msisdn, repeatable: any of
// them), transaction id (--txn) and time (--since/--until, inclusive); the flags
// combine (all must hold). Numbers and transaction ids go through the log's indexes;
// time alone is a scan of the whole log, since the log has no time index.
#include <algorithm>
#include <iterator>

#include "schemas/api.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/describe.hpp"
#include "tools/cli/fold.hpp"
#include "tools/cli/history.hpp"
#include "tools/cli/table.hpp"

namespace cli {

namespace {

std::vector<engine::event_seq> intersect(const std::vector<engine::event_seq>& x, const std::vector<engine::event_seq>& y) {
  std::vector<engine::event_seq> out;
  std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(out));
  return out;
}

}  // namespace

int cmd_audit(const global_options& g, const audit_args& a) {
  const auto window = parse_window(a.since, a.until);
  if (!window) return exit_usage;
  const auto [since, until] = *window;
  std::vector<std::string> numbers;
  for (const auto& m : a.msisdns) {
    auto n = schemas::normalize_msisdn(m);
    if (!n) {
      complain("--msisdn {}: not an E.164 number (6 to 15 digits)", m);
      return exit_usage;
    }
    numbers.push_back(*n);
  }
  auto reader = log_reader::open(g.data_dir);
  if (!reader) return exit_cannot_open;
  const auto& log = reader->log();
  auto hist = history::open(log, g.archives);  // archive files (--archive), then the live log
  if (!hist) return exit_check_failed;
  hist->note_missing("the events listed");

  using al = table::align;
  table t({{"TIME"}, {"SEQ", al::right}, {"CALL"}, {"ACTOR"}, {"ENDPOINT"}, {"OUTCOME"}, {"STATUS"}, {"TXN"},
           {"PAYLOAD", al::left, 48}});
  std::uint64_t matched = 0;
  const auto emit = [&](const engine::event& e, std::string_view raw) {
    if ((since && e.time < *since) || (until && e.time > *until)) return !should_stop();
    ++matched;
    if (g.json) {
      std::fwrite(raw.data(), 1, raw.size(), stdout);
      std::fputc('\n', stdout);
    } else {
      std::string payload = payload_label(e);
      if (e.sdp) payload += (payload.empty() ? "" : " ") + std::string("sdp: ") + sdp_summary(*e.sdp);
      t.add({format_time(e.time), std::to_string(e.seq), e.call_id, actor_label(e), endpoint_label(e),
             outcome_label(e), status_label(e), e.txn_id, payload});
    }
    return !should_stop();
  };

  std::optional<log_break> broken;
  // Archived events first: the archives have no index, so they are scanned with the same
  // selection the indexes make (the number acted, or is the /start's from or to; the txn).
  if (!hist->archives().empty()) {
    progress prog(g, "scanning archives", hist->anchor().seq);
    auto st = hist->scan(hist->first_seq(), hist->anchor().seq, [&](const engine::event& e, std::string_view raw) {
      if ((e.seq & 4095) == 0) prog.update(e.seq);
      if (!a.txn.empty() && e.txn_id != a.txn) return !should_stop();
      if (!numbers.empty() && std::none_of(numbers.begin(), numbers.end(), [&](const std::string& n) {
            return e.msisdn == n || e.from == n || e.to == n;
          }))
        return !should_stop();
      return emit(e, raw);
    });
    if (!st) broken = log_break{st.error().seq, st.error().detail};
  }
  if (broken) {
  } else if (!numbers.empty() || !a.txn.empty()) {
    std::optional<std::vector<engine::event_seq>> seqs;
    if (!a.txn.empty()) seqs = log.seqs_by_txn(a.txn);
    if (!numbers.empty()) {
      std::vector<engine::event_seq> any;
      for (const auto& n : numbers) {
        auto s = log.seqs_by_msisdn(n);
        std::vector<engine::event_seq> merged;
        std::set_union(any.begin(), any.end(), s.begin(), s.end(), std::back_inserter(merged));
        any = std::move(merged);
      }
      seqs = seqs ? intersect(*seqs, any) : std::move(any);
    }
    progress prog(g, "reading", seqs->size());
    std::uint64_t done = 0;
    broken = read_events(log, *seqs, [&](const engine::event& e, std::string_view raw) {
      prog.update(++done);
      return emit(e, raw);
    });
  } else {
    progress prog(g, "scanning", log.last_seq());
    std::uint64_t done = 0;
    auto st = log.scan(1, std::numeric_limits<engine::event_seq>::max(), [&](const engine::event& e, std::string_view raw) {
      if ((++done & 4095) == 0) prog.update(done);
      return emit(e, raw);
    });
    if (!st) broken = log_break{st.error().seq, st.error().detail};
  }

  if (!g.json) {
    t.print(stdout);
    std::printf("(%s)\n", counted(matched, "event").c_str());
  }
  if (broken) {
    complain("BROKEN at seq {}: {}", broken->seq, broken->problem);
    return exit_check_failed;
  }
  return exit_ok;
}

}  // namespace cli
