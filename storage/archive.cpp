#include "storage/archive.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <simdjson.h>
#include <zstd.h>

#include "engine/codec.hpp"
#include "schemas/digest.hpp"
#include "schemas/json_writer.hpp"

namespace storage {
namespace {

constexpr std::string_view magic = "yna-archive 1\n";
constexpr std::string_view end_line = "end\n";
constexpr std::size_t block_events = 4096;           // events per block (a changed byte costs one block)
constexpr std::uint32_t max_block_raw = 256u << 20;  // a block larger than this is not one we wrote
constexpr std::size_t max_header = 4096;
const std::string zero_hash(64, '0');

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::string header_json(const archive_header& h) {
  schemas::json_writer w;
  w.begin_object();
  w.field("logId", std::string_view(h.log_id)).field("firstSeq", h.first_seq).field("lastSeq", h.last_seq);
  w.field("firstPrev", std::string_view(h.first_prev)).field("lastHash", std::string_view(h.last_hash));
  w.field("events", h.events).field("blocks", h.blocks);
  w.end_object();
  return w.take();
}

bool sync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

struct cctx_deleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct dctx_deleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

}  // namespace

schemas::result<archive_header, std::string> write_archive(const event_log& log, engine::event_seq first,
                                                           engine::event_seq last, const std::filesystem::path& out,
                                                           const std::function<void(std::uint64_t)>& progress) {
  if (first == 0 || last < first) return schemas::failure{std::string("nothing to archive (an empty range)")};
  const std::string log_id = log.log_id();
  if (log_id.empty()) return schemas::failure{std::string("the log has no id (no first event)")};

  archive_header h;
  h.log_id = log_id;
  h.first_seq = first;
  h.last_seq = last;
  if (first == 1) {
    h.first_prev = zero_hash;
  } else {
    auto e = log.get(first);
    if (!e) return schemas::failure{"event " + std::to_string(first) + " is not in the log"};
    h.first_prev = e->prev_hash;
  }

  // The blocks first (in memory, one at a time written to the .partial file), then the
  // header in front: the header's counts are known only at the end.
  const std::filesystem::path partial = out.string() + ".partial";
  const std::filesystem::path body_path = out.string() + ".body.partial";
  std::unique_ptr<ZSTD_CCtx, cctx_deleter> cctx(ZSTD_createCCtx());
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 9);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::string failure;
  {
    std::ofstream body(body_path, std::ios::binary | std::ios::trunc);
    if (!body) return schemas::failure{body_path.string() + ": cannot create"};
    std::string raw, packed;
    std::uint32_t in_block = 0;
    engine::event_seq expected = first;
    std::string prev = h.first_prev;
    auto flush = [&]() -> bool {
      if (in_block == 0) return true;
      packed.resize(ZSTD_compressBound(raw.size()));
      const std::size_t n = ZSTD_compress2(cctx.get(), packed.data(), packed.size(), raw.data(), raw.size());
      if (ZSTD_isError(n)) {
        failure = std::string("compression: ") + ZSTD_getErrorName(n);
        return false;
      }
      std::string frame;
      put_u32(frame, static_cast<std::uint32_t>(n));
      put_u32(frame, static_cast<std::uint32_t>(raw.size()));
      put_u32(frame, in_block);
      body.write(frame.data(), static_cast<std::streamsize>(frame.size()));
      body.write(packed.data(), static_cast<std::streamsize>(n));
      ++h.blocks;
      raw.clear();
      in_block = 0;
      return static_cast<bool>(body);
    };
    auto st = log.scan(first, last, [&](const engine::event& e, std::string_view rec) {
      if (e.seq != expected) {
        failure = "event " + std::to_string(expected) + " is missing from the log";
        return false;
      }
      if (e.prev_hash != prev) {
        failure = "the log's chain is broken at event " + std::to_string(e.seq) + " (run yna-tool verify)";
        return false;
      }
      prev = schemas::to_hex(schemas::sha256(rec));
      raw.append(rec).push_back('\n');
      ++in_block;
      ++h.events;
      ++expected;
      if ((in_block >= block_events || raw.size() >= (64u << 20)) && !flush()) return false;
      if (progress && h.events % 4096 == 0) progress(h.events);
      return true;
    });
    if (!st) failure = st.error().detail;
    if (failure.empty() && expected != last + 1)
      failure = "the log ends at event " + std::to_string(expected - 1) + ", before " + std::to_string(last);
    if (failure.empty()) flush();
    h.last_hash = prev;
    if (failure.empty() && !body) failure = body_path.string() + ": write failed";
  }
  if (progress) progress(h.events);
  std::error_code ec;
  if (!failure.empty()) {
    std::filesystem::remove(body_path, ec);
    return schemas::failure{std::move(failure)};
  }
  {
    std::ofstream f(partial, std::ios::binary | std::ios::trunc);
    std::ifstream body(body_path, std::ios::binary);
    f << magic << header_json(h) << '\n' << body.rdbuf() << end_line;
    f.flush();
    if (!f) failure = partial.string() + ": write failed";
  }
  std::filesystem::remove(body_path, ec);
  if (failure.empty() && !sync_path(partial, false)) failure = partial.string() + ": fsync failed";
  if (failure.empty()) {
    std::filesystem::rename(partial, out, ec);
    if (ec) failure = out.string() + ": " + ec.message();
  }
  if (failure.empty() && !sync_path(out.parent_path().empty() ? "." : out.parent_path(), true))
    failure = out.parent_path().string() + ": fsync of the folder failed";
  if (!failure.empty()) {
    std::filesystem::remove(partial, ec);
    return schemas::failure{std::move(failure)};
  }

  // Read it back in full: only a file that reads as written may let events go.
  auto back = read_archive(out);
  if (!back) return schemas::failure{"reading back " + back.error()};
  if (back->first_seq != h.first_seq || back->last_seq != h.last_seq || back->last_hash != h.last_hash ||
      back->events != h.events || back->log_id != h.log_id)
    return schemas::failure{out.string() + ": reads back other than written"};
  return h;
}

namespace {

// The magic line and the header of an open archive; `in` is left at the first block.
schemas::result<archive_header, std::string> read_header(std::ifstream& in, const std::string& name) {
  auto fail = [&](std::string what) { return schemas::failure{name + ": " + std::move(what)}; };
  if (!in) return fail("cannot open");
  std::string line;
  line.resize(magic.size());
  if (!in.read(line.data(), static_cast<std::streamsize>(magic.size())) || line != magic)
    return fail("not a yna archive (no 'yna-archive 1' line)");
  std::string header_line;
  if (!std::getline(in, header_line) || header_line.size() > max_header) return fail("the header line is missing or too long");

  archive_header h;
  simdjson::dom::parser p;
  simdjson::dom::object o;
  if (p.parse(header_line).get_object().get(o)) return fail("the header is not JSON");
  std::string_view s;
  std::uint64_t n = 0;
  bool ok = true;
  auto str = [&](const char* k, std::string& out) {
    if (o[k].get_string().get(s)) ok = false;
    else out = std::string(s);
  };
  auto num = [&](const char* k, std::uint64_t& out) {
    if (o[k].get_uint64().get(n)) ok = false;
    else out = n;
  };
  str("logId", h.log_id);
  num("firstSeq", h.first_seq);
  num("lastSeq", h.last_seq);
  str("firstPrev", h.first_prev);
  str("lastHash", h.last_hash);
  num("events", h.events);
  num("blocks", h.blocks);
  if (!ok || h.first_seq == 0 || h.last_seq < h.first_seq || h.events != h.last_seq - h.first_seq + 1 ||
      h.first_prev.size() != 64 || h.last_hash.size() != 64)
    return fail("the header is not one an archive writes: " + header_line.substr(0, 200));
  return h;
}

}  // namespace

schemas::result<archive_header, std::string> read_archive_header(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return read_header(in, path.string());
}

schemas::result<archive_header, std::string> read_archive(const std::filesystem::path& path, const archive_fn& fn) {
  const std::string name = path.string();
  auto fail = [&](std::string what) { return schemas::failure{name + ": " + std::move(what)}; };
  std::ifstream in(path, std::ios::binary);
  auto parsed = read_header(in, name);
  if (!parsed) return schemas::failure{parsed.error()};
  archive_header h = std::move(*parsed);

  std::unique_ptr<ZSTD_DCtx, dctx_deleter> dctx(ZSTD_createDCtx());
  std::string packed, raw;
  engine::event_seq expected = h.first_seq;
  std::string prev = h.first_prev;
  std::uint64_t blocks = 0;
  bool stopped = false;
  while (!stopped && expected <= h.last_seq) {
    const std::string where = "block " + std::to_string(blocks + 1) + " (from event " + std::to_string(expected) + ")";
    std::array<unsigned char, 12> frame{};
    if (!in.read(reinterpret_cast<char*>(frame.data()), frame.size()))
      return fail("truncated: " + std::to_string(expected - h.first_seq) + " of " + std::to_string(h.events) +
                  " events, " + where + " is missing");
    const std::uint32_t csize = get_u32(frame.data()), rsize = get_u32(frame.data() + 4),
                        count = get_u32(frame.data() + 8);
    if (rsize > max_block_raw || csize > ZSTD_compressBound(rsize) || count == 0 ||
        count > h.last_seq - expected + 1)
      return fail(where + ": a corrupt block frame");
    packed.resize(csize);
    if (!in.read(packed.data(), csize))
      return fail("truncated: " + where + " is cut short (" + std::to_string(in.gcount()) + " of " +
                  std::to_string(csize) + " bytes)");
    // The frame names its own size: a frame that disagrees is not ours (and no buffer is
    // sized from a count the frame does not back).
    if (ZSTD_getFrameContentSize(packed.data(), packed.size()) != rsize)
      return fail(where + " (events " + std::to_string(expected) + ".." + std::to_string(expected + count - 1) +
                  ") is corrupt: its frame does not hold " + std::to_string(rsize) + " bytes");
    raw.resize(rsize);
    const std::size_t n = ZSTD_decompressDCtx(dctx.get(), raw.data(), raw.size(), packed.data(), packed.size());
    if (ZSTD_isError(n) || n != rsize)
      return fail(where + " (events " + std::to_string(expected) + ".." + std::to_string(expected + count - 1) +
                  ") is corrupt: " + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
    ++blocks;
    std::string_view rest(raw);
    for (std::uint32_t i = 0; i < count; ++i) {
      const auto nl = rest.find('\n');
      if (nl == std::string_view::npos) return fail(where + ": fewer records than its count");
      const std::string_view rec = rest.substr(0, nl);
      rest.remove_prefix(nl + 1);
      auto e = engine::decode_event(rec);
      if (!e) return fail("event " + std::to_string(expected) + " does not decode");
      if (e->seq != expected)
        return fail("event " + std::to_string(expected) + " is missing (the next is " + std::to_string(e->seq) + ")");
      if (e->prev_hash != prev)
        return fail(expected == h.first_seq
                        ? "event " + std::to_string(expected) + ": prev is not the header's firstPrev"
                        : "event " + std::to_string(expected - 1) + " does not hash to the prev stored in event " +
                              std::to_string(expected));
      prev = schemas::to_hex(schemas::sha256(rec));
      if (fn && !fn(*e, rec)) {
        stopped = true;
        break;
      }
      ++expected;
    }
    if (!stopped && !rest.empty()) return fail(where + ": more records than its count");
  }
  if (stopped) return h;
  if (prev != h.last_hash) return fail("event " + std::to_string(h.last_seq) + " does not hash to the header's lastHash");
  if (blocks != h.blocks) return fail(std::to_string(blocks) + " blocks, the header says " + std::to_string(h.blocks));
  std::string tail(end_line.size(), '\0');
  if (!in.read(tail.data(), static_cast<std::streamsize>(tail.size())) || tail != end_line)
    return fail("truncated: the end line is missing");
  if (in.peek() != std::char_traits<char>::eof()) return fail("trailing bytes after the end line");
  return h;
}

}  // namespace storage
