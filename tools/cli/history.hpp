#pragma once
// The log's history as one run of events (contract §9): the archive files given with
// --archive, in seq order, then the live log from its anchor. What replay, cdr,
// timeline, audit and export read, so they work the same before and after archiving.
#include <optional>
#include <string>
#include <vector>

#include "engine/types.hpp"
#include "schemas/result.hpp"
#include "storage/archive.hpp"
#include "storage/event_log.hpp"

namespace cli {

struct archive_file {
  std::string path;
  storage::archive_header header;
};

class history {
 public:
  // Reads the archives' headers and checks they and the log make one chain: the same log
  // (logId), no gap or overlap between them (each starts where the one before ends, its
  // firstPrev that one's lastHash), the last ending at the live log's anchor with its
  // hash. Given in any order. Complains and returns nullopt when they do not (the caller
  // exits with exit_check_failed).
  static std::optional<history> open(const storage::event_log& log, const std::vector<std::string>& paths);

  // The first event of the history (1, or later when the archives of the oldest events
  // were not given) and the prev it must have.
  engine::event_seq first_seq() const { return first_seq_; }
  const std::string& first_prev() const { return first_prev_; }
  const storage::log_anchor& anchor() const { return anchor_; }
  const std::vector<archive_file>& archives() const { return archives_; }
  const storage::event_log& log() const { return *log_; }

  // Like event_log::scan over the whole history: archived events (each archive is read
  // with all of read_archive's checks, up to `to`), then the live log's. A problem in an
  // archive is a read_error naming the file.
  schemas::status<storage::read_error> scan(engine::event_seq from, engine::event_seq to,
                                            const storage::event_log::scan_fn& fn) const;

  // When the history does not start at event 1, one line on stderr saying which events
  // are left out and how to include them; `what` names the output ("the records").
  void note_missing(std::string_view what) const;

 private:
  const storage::event_log* log_ = nullptr;
  std::vector<archive_file> archives_;
  storage::log_anchor anchor_;
  engine::event_seq first_seq_ = 1;
  std::string first_prev_;
};

}  // namespace cli
