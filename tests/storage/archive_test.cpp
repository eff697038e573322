// Archive files (storage/archive.hpp, contract §9): written from the log, read back with
// every check, and every kind of damage named.
#include "storage/archive.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "engine/codec.hpp"
#include "log_fixture.hpp"
#include "schemas/digest.hpp"

using namespace storage_test;
using engine::event_seq;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A log of `n` events (make_batch), appended in batches of 7.
std::unique_ptr<storage::event_log> log_of(const temp_dir& tmp, std::size_t n) {
  auto log = open_log(tmp.log());
  for (std::size_t at = 1; at <= n; at += 7) {
    auto b = make_batch(at, std::min<std::size_t>(7, n - at + 1));
    REQUIRE(append_wait(*log, b).has_value());
  }
  return log;
}

}  // namespace

TEST_CASE("archive: what is written reads back event by event, byte for byte, with the anchor") {
  temp_dir tmp;
  auto log = log_of(tmp, 10000);  // three blocks of 4096
  REQUIRE_FALSE(log->log_id().empty());
  const auto file = tmp.path / "a.yna-archive";
  std::uint64_t progressed = 0;
  auto h = storage::write_archive(*log, 1, 9000, file, [&](std::uint64_t n) { progressed = n; });
  REQUIRE_MESSAGE(h.has_value(), (h ? "" : h.error()));
  CHECK(progressed == 9000);
  CHECK(h->first_seq == 1);
  CHECK(h->last_seq == 9000);
  CHECK(h->events == 9000);
  CHECK(h->blocks == 3);
  CHECK(h->log_id == log->log_id());
  CHECK(h->first_prev == std::string(64, '0'));
  CHECK(h->last_hash == log->get(9001)->prev_hash);  // where the live log continues
  CHECK_FALSE(std::filesystem::exists(file.string() + ".partial"));

  event_seq expected = 1;
  auto r = storage::read_archive(file, [&](const engine::event& e, std::string_view raw) {
    CHECK(e.seq == expected);
    if (expected % 997 == 0) CHECK(std::string(raw) == engine::encode_event(*log->get(e.seq)));
    ++expected;
    return true;
  });
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  CHECK(expected == 9001);

  // A later range continues the chain: its firstPrev is the earlier one's lastHash.
  auto h2 = storage::write_archive(*log, 9001, 10000, tmp.path / "b.yna-archive");
  REQUIRE(h2.has_value());
  CHECK(h2->first_prev == h->last_hash);
}

TEST_CASE("archive: damage is named: a changed byte (by block and events), truncation, trailing bytes, not an archive") {
  temp_dir tmp;
  auto log = log_of(tmp, 9000);
  const auto file = tmp.path / "a.yna-archive";
  REQUIRE(storage::write_archive(*log, 1, 9000, file).has_value());
  const std::string good = slurp(file);
  const auto body_at = good.find('\n', good.find('\n') + 1) + 1;  // after the magic and header lines

  SUBCASE("one byte changed in the second block") {
    std::string bad = good;
    // Block 1's frame is 12 bytes + its compressed size; aim inside block 2.
    const auto csize1 = (std::uint32_t(static_cast<unsigned char>(bad[body_at])) << 24) |
                        (std::uint32_t(static_cast<unsigned char>(bad[body_at + 1])) << 16) |
                        (std::uint32_t(static_cast<unsigned char>(bad[body_at + 2])) << 8) |
                        std::uint32_t(static_cast<unsigned char>(bad[body_at + 3]));
    const auto at = body_at + 12 + csize1 + 12 + 100;
    REQUIRE(at < bad.size());
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    spit(file, bad);
    auto r = storage::read_archive(file);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("block 2 (from event 4097)") != std::string::npos);
    CHECK(r.error().find("events 4097..8192") != std::string::npos);
    CHECK(r.error().find("corrupt") != std::string::npos);
  }
  SUBCASE("truncated half way") {
    spit(file, good.substr(0, good.size() / 2));
    auto r = storage::read_archive(file);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("truncated") != std::string::npos);
  }
  SUBCASE("the end line cut off") {
    spit(file, good.substr(0, good.size() - 2));
    auto r = storage::read_archive(file);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("truncated: the end line is missing") != std::string::npos);
  }
  SUBCASE("trailing bytes") {
    spit(file, good + "x");
    CHECK(storage::read_archive(file).error().find("trailing bytes") != std::string::npos);
  }
  SUBCASE("not an archive") {
    spit(file, "{\"v\":1}\n");
    CHECK(storage::read_archive(file).error().find("not a yna archive") != std::string::npos);
  }
  SUBCASE("a header that lies about the range") {
    std::string bad = good;
    const auto k = bad.find("\"lastSeq\":9000");
    REQUIRE(k != std::string::npos);
    bad.replace(k, 14, "\"lastSeq\":9001");
    spit(file, bad);
    CHECK(storage::read_archive(file).error().find("the header is not one an archive writes") != std::string::npos);
  }
}

TEST_CASE("archive: a range the log does not hold fails and leaves no file") {
  temp_dir tmp;
  auto log = log_of(tmp, 20);
  const auto file = tmp.path / "a.yna-archive";
  auto h = storage::write_archive(*log, 5, 30, file);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().find("ends at event 20") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(file));
  CHECK_FALSE(std::filesystem::exists(file.string() + ".partial"));
  CHECK_FALSE(storage::write_archive(*log, 0, 3, file).has_value());
}

TEST_CASE("archive: the log's id is the hash of its first record, kept across reopen") {
  temp_dir tmp;
  std::string id;
  {
    auto log = log_of(tmp, 3);
    id = log->log_id();
    CHECK(id == schemas::to_hex(schemas::sha256(engine::encode_event(*log->get(1)))));
  }
  auto again = open_log(tmp.log());
  CHECK(again->log_id() == id);
  temp_dir other;
  auto log2 = open_log(other.log());
  CHECK(log2->log_id().empty());
}
