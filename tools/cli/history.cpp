#include "tools/cli/history.hpp"

#include <algorithm>

#include "tools/cli/common.hpp"

namespace cli {

std::optional<history> history::open(const storage::event_log& log, const std::vector<std::string>& paths) {
  history h;
  h.log_ = &log;
  h.anchor_ = log.anchor();
  const std::string id = log.log_id();
  for (const auto& p : paths) {
    auto hd = storage::read_archive_header(p);
    if (!hd) {
      complain("{}", hd.error());
      return std::nullopt;
    }
    if (hd->log_id != id) {
      complain("{}: an archive of another log (its logId {}…, this log's {}…)", p, hd->log_id.substr(0, 16),
               id.substr(0, 16));
      return std::nullopt;
    }
    h.archives_.push_back(archive_file{p, std::move(*hd)});
  }
  std::sort(h.archives_.begin(), h.archives_.end(),
            [](const archive_file& a, const archive_file& b) { return a.header.first_seq < b.header.first_seq; });
  for (std::size_t i = 1; i < h.archives_.size(); ++i) {
    const auto& a = h.archives_[i - 1];
    const auto& b = h.archives_[i];
    if (b.header.first_seq <= a.header.last_seq) {
      complain("{} (events {}..{}) overlaps {} (events {}..{})", b.path, b.header.first_seq, b.header.last_seq, a.path,
               a.header.first_seq, a.header.last_seq);
      return std::nullopt;
    }
    if (b.header.first_seq != a.header.last_seq + 1) {
      complain("events {}..{} are in no archive given: between {} and {}", a.header.last_seq + 1,
               b.header.first_seq - 1, a.path, b.path);
      return std::nullopt;
    }
    if (b.header.first_prev != a.header.last_hash) {
      complain("{} does not continue {}: its first event's prev is not the hash of event {}", b.path, a.path,
               a.header.last_seq);
      return std::nullopt;
    }
  }
  if (!h.archives_.empty()) {
    const auto& last = h.archives_.back();
    if (last.header.last_seq != h.anchor_.seq || last.header.last_hash != h.anchor_.hash) {
      if (last.header.last_seq > h.anchor_.seq)
        complain("{} (events {}..{}) reaches past the live log's anchor (event {}): its range was not removed "
                 "from the live log (run yna-tool archive again, or leave the file out)",
                 last.path, last.header.first_seq, last.header.last_seq, h.anchor_.seq);
      else if (last.header.last_seq < h.anchor_.seq)
        complain("events {}..{} are in no archive given (the live log starts at event {})", last.header.last_seq + 1,
                 h.anchor_.seq, h.anchor_.seq + 1);
      else
        complain("{} ends at the anchor's event {} but with another hash: not the events this log archived",
                 last.path, h.anchor_.seq);
      return std::nullopt;
    }
    h.first_seq_ = h.archives_.front().header.first_seq;
    h.first_prev_ = h.archives_.front().header.first_prev;
  } else {
    h.first_seq_ = h.anchor_.seq + 1;
    h.first_prev_ = h.anchor_.seq > 0 ? h.anchor_.hash : std::string(64, '0');
  }
  return h;
}

schemas::status<storage::read_error> history::scan(engine::event_seq from, engine::event_seq to,
                                                   const storage::event_log::scan_fn& fn) const {
  if (from > to) return {};
  bool more = true;
  for (const auto& a : archives_) {
    if (!more) return {};
    if (a.header.last_seq < from) continue;
    if (a.header.first_seq > to) return {};
    auto r = storage::read_archive(a.path, [&](const engine::event& e, std::string_view raw) {
      if (e.seq < from) return true;
      if (e.seq > to) return false;
      more = fn(e, raw);
      return more;
    });
    if (!r) return schemas::failure{storage::read_error{storage::read_errc::undecodable, 0, r.error()}};
  }
  if (!more) return {};
  return log_->scan(std::max(from, anchor_.seq + 1), to, fn);
}

void history::note_missing(std::string_view what) const {
  if (first_seq_ <= 1) return;
  complain("events 1..{} were archived out of the live log: {} cover events {} on; give their archive files with "
           "--archive FILE",
           first_seq_ - 1, what, first_seq_);
}

}  // namespace cli
