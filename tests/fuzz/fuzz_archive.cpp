// storage::read_archive on arbitrary bytes: an archive file an operator hands to
// `yna-tool verify --archive` or to the engine's removal (contract §9), damaged or
// hostile. Properties:
//  - reading never crashes, and a refusal is one line naming the file;
//  - an accepted file's header is consistent (events = lastSeq - firstSeq + 1) and its
//    events came in order, each seq once, as many as the header says, each naming the
//    seq it was read at;
//  - read_archive_header agrees with read_archive on an accepted file.
// The input is written to an anonymous memory file (memfd) and read through its
// /proc/self/fd path, as the tools read a file.
#include "storage/archive.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const int fd = ::memfd_create("fuzz-archive", 0);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::ftruncate(fd, 0) == 0);
  std::size_t off = 0;
  while (off < size) {
    const ssize_t n = ::pwrite(fd, data + off, size - off, static_cast<off_t>(off));
    FUZZ_CHECK(n > 0);
    off += static_cast<std::size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  std::uint64_t seen = 0;
  engine::event_seq next = 0;
  bool in_order = true;
  auto r = storage::read_archive(path, [&](const engine::event& e, std::string_view raw) {
    if (seen == 0) next = e.seq;
    in_order = in_order && e.seq == next && !raw.empty();
    ++next;
    ++seen;
    return true;
  });
  if (!r) {
    FUZZ_CHECK(r.error().rfind(path + ": ", 0) == 0);
    FUZZ_CHECK(r.error().find('\n') == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(r->first_seq > 0 && r->last_seq >= r->first_seq);
  FUZZ_CHECK(r->events == r->last_seq - r->first_seq + 1);
  FUZZ_CHECK(seen == r->events);
  FUZZ_CHECK(in_order);
  auto h = storage::read_archive_header(path);
  FUZZ_CHECK(h.has_value());
  FUZZ_CHECK(h->first_seq == r->first_seq && h->last_seq == r->last_seq && h->last_hash == r->last_hash &&
             h->log_id == r->log_id && h->events == r->events);
  return 0;
}
