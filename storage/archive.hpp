#pragma once
// Archive files (contract §9): a run of events moved out of the live log, compressed,
// carrying its own hash chain and the anchor where the rest of the chain continues.
//
// Layout:
//   "yna-archive 1\n"
//   header JSON line: {"logId":…,"firstSeq":a,"lastSeq":b,"firstPrev":…,"lastHash":…,
//                      "events":n,"blocks":k}\n
//   k blocks, each: [u32 BE compressed size][u32 BE raw size][u32 BE events]
//                   [zstd frame with content checksum: the raw records, each + '\n']
//   "end\n"
// The records are the log's own bytes, so their `prev` fields are the chain: record a's
// prev is firstPrev (the hash of the record before it, 64 '0's when a is 1), every later
// one's is the SHA-256 of the record before it, and lastHash is the SHA-256 of record b:
// the live log's first remaining event has it as its prev. logId names the log (the
// SHA-256 of its first record), so an archive of another log is told apart.
//
// Reading checks everything it can without the log: the magic line, the header, every
// block's framing and checksum (a changed byte is named by its block and its events),
// seqs a..b without gap, the chain inside, the counts, the end line (a truncated file
// is named as such). Checks against the log (the anchor, the logId) are the caller's.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "engine/types.hpp"
#include "schemas/result.hpp"
#include "storage/event_log.hpp"

namespace storage {

struct archive_header {
  std::string log_id;            // hex SHA-256 of the log's first record
  engine::event_seq first_seq = 0;
  engine::event_seq last_seq = 0;
  std::string first_prev;        // prev of record first_seq
  std::string last_hash;         // hex SHA-256 of record last_seq: the anchor
  std::uint64_t events = 0;
  std::uint64_t blocks = 0;
};

// Writes events [first, last] of `log` to `out`: first to `out`.partial, synced, then
// renamed and the folder synced, then read back in full (read_archive) and compared
// with what was written. Never leaves a partial file under `out`. `progress` gets the
// events written so far. Fails naming the cause (a gap or unreadable event in the log,
// I/O, the read-back).
[[nodiscard]] schemas::result<archive_header, std::string> write_archive(
    const event_log& log, engine::event_seq first, engine::event_seq last, const std::filesystem::path& out,
    const std::function<void(std::uint64_t)>& progress = {});

// Reads `path` and checks it (see above), calling `fn` for each event in order with
// its raw record; `fn` returning false stops early (the rest is not checked). Fails
// with one line naming the file and the problem: not an archive, a bad header, block N
// (events x..y) corrupt or cut short, a gap, a broken link at seq N, truncated (n of m
// events), trailing bytes.
using archive_fn = std::function<bool(const engine::event&, std::string_view raw)>;
// The magic line and the header alone (cheap: for ordering archives before reading them).
[[nodiscard]] schemas::result<archive_header, std::string> read_archive_header(const std::filesystem::path& path);
[[nodiscard]] schemas::result<archive_header, std::string> read_archive(const std::filesystem::path& path,
                                                                        const archive_fn& fn = {});

}  // namespace storage
