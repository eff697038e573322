// Archive files (storage/archive.hpp, contract §9): written from the log, read back with
// every check, and every kind of damage named.
#include "storage/archive.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "engine/codec.hpp"
#include "engine/decide.hpp"
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

// ------------------------------------------------------------------ removal from the live log

namespace {

constexpr int archived_calls = 100;

// Calls C0..C99, three events each (/start with a clientCorrelator, ringing, retire), all
// retired; then CLIVE, started at 301 and still in memory (its persisted state says so),
// and one more event of it at 302. Every batch carries call states, so the persisted
// state follows the log.
std::unique_ptr<storage::event_log> calls_log(const temp_dir& tmp) {
  auto log = open_log(tmp.log());
  const std::vector<engine::call_change> none;
  for (int i = 0; i < archived_calls; ++i) {
    const event_seq s = 3 * static_cast<event_seq>(i) + 1;
    const std::string id = "C" + std::to_string(i);
    auto retire = make_event(s + 2, id, "", "", engine::action::retire);
    retire.actor_role = engine::role::engine;
    std::vector<engine::event> b{make_start(s, id, "14255500001", "14255500002", "txn-s" + std::to_string(i)),
                                 make_event(s + 1, id, "14255500002", "txn-r" + std::to_string(i)), retire};
    REQUIRE(append_wait(*log, b, &none).has_value());
  }
  engine::event live = make_start(301, "CLIVE", "14255500003", "14255500004", "txn-live");
  engine::call_state st;
  engine::apply(st, live);
  std::vector<engine::call_change> ch{{"CLIVE", st}};
  std::vector<engine::event> b{live, make_event(302, "CLIVE", "14255500004", "txn-live-r")};
  REQUIRE(append_wait(*log, b, &ch).has_value());
  return log;
}

// The first event a scan from seq 1 returns (0: none).
event_seq first_readable(const storage::event_log& log) {
  event_seq first = 0;
  REQUIRE(log.scan(1, 1000, [&](const engine::event& e, std::string_view) {
    first = e.seq;
    return false;
  }).has_value());
  return first;
}

std::string fail_text(const schemas::result<storage::removal_report, std::string>& r) {
  return r ? std::string("(removed)") : r.error();
}

}  // namespace

TEST_CASE("remove_archived: the range leaves the live log; archived calls keep their final state and /start key") {
  temp_dir tmp;
  auto log = calls_log(tmp);
  const auto hash150 = log->get(151)->prev_hash;
  const auto file = tmp.path / "older.yna-archive";
  REQUIRE(storage::write_archive(*log, 1, 150, file).has_value());
  std::vector<std::string> stages;
  auto rep = log->remove_archived(file, [&](std::string_view s, std::uint64_t, std::uint64_t) {
    if (stages.empty() || stages.back() != s) stages.emplace_back(s);
  });
  REQUIRE_MESSAGE(rep.has_value(), fail_text(rep));
  CHECK(rep->first_seq == 1);
  CHECK(rep->last_seq == 150);
  CHECK(rep->calls == 50);  // C0..C49 started in the range
  CHECK(rep->removed == 150);
  CHECK(rep->anchor.seq == 150);
  CHECK(rep->anchor.hash == hash150);
  CHECK(stages.front() == "checking");
  CHECK(log->anchor().seq == 150);
  CHECK(log->anchor_seq() == 150);

  // Out of every read: events, indexes, scans.
  CHECK_FALSE(log->get(1).has_value());
  CHECK(log->seqs_by_call("C0").empty());
  CHECK(log->seqs_by_txn("txn-s0").empty());
  CHECK(first_readable(*log) == 151);
  CHECK(log->seqs_by_call("C50") == std::vector<event_seq>{151, 152, 153});
  CHECK(log->last_seq() == 302);

  // An archived call answers from its archived state: parties, status, retired, no SDP.
  auto c0 = log->load_call("C0");
  REQUIRE(c0.has_value());
  CHECK(c0->from == "14255500001");
  CHECK(c0->to == "14255500002");
  CHECK(c0->retired);
  CHECK(c0->status == engine::call_status::ringing);
  CHECK(c0->start_seq == 1);
  CHECK(c0->mo_sdp.empty());
  CHECK(log->find_start("14255500001", "corr-1") == std::optional<std::string>("C0"));
  // A call after the range is folded from its events as before (with its SDP).
  auto c50 = log->load_call("C50");
  REQUIRE(c50.has_value());
  CHECK_FALSE(c50->mo_sdp.empty());
  CHECK(log->load_call("CLIVE").has_value());

  // verify walks the live log from the anchor, by_start entries of archived calls included.
  auto v = log->verify();
  CHECK_MESSAGE(v.ok, v.problem);
  CHECK(v.anchor == 150);
  CHECK(v.checked == 152);
  CHECK(v.last_seq == 302);

  // The anchor and the archived states survive a reopen.
  log.reset();
  auto again = open_log(tmp.log());
  CHECK(again->anchor().seq == 150);
  CHECK(again->load_call("C0").has_value());
  CHECK(again->last_seq() == 302);
  CHECK(again->verify().ok);
}

TEST_CASE("remove_archived: a later event of an archived call is folded onto its archived state") {
  temp_dir tmp;
  auto log = calls_log(tmp);
  // An event of C0 after the range (as a noop /end of a retired call would be): accepted
  // and not a noop here, so the fold must apply it onto the archived state.
  auto late = make_event(303, "C0", "14255500001", "txn-late", engine::action::connected);
  std::vector<engine::event> b{late};
  const std::vector<engine::call_change> none;
  REQUIRE(append_wait(*log, b, &none).has_value());
  const auto file = tmp.path / "older.yna-archive";
  REQUIRE(storage::write_archive(*log, 1, 150, file).has_value());
  REQUIRE(log->remove_archived(file).has_value());
  auto c0 = log->load_call("C0");
  REQUIRE(c0.has_value());
  CHECK(c0->connected_at == late.time);
  CHECK(c0->start_seq == 1);
}

TEST_CASE("remove_archived refuses, removing nothing: truncated, another log, out of order, a live call, the last event") {
  temp_dir tmp;
  auto log = calls_log(tmp);
  auto whole = [&] {
    CHECK(log->anchor().seq == 0);
    CHECK(log->get(1).has_value());
    CHECK(log->seqs_by_call("C0").size() == 3);
    auto v = log->verify();
    CHECK_MESSAGE(v.ok, v.problem);
    CHECK(v.checked == 302);
  };
  auto archive_of = [&](const storage::event_log& from, event_seq first, event_seq last, const char* name) {
    const auto file = tmp.path / name;
    REQUIRE(storage::write_archive(from, first, last, file).has_value());
    return file;
  };
  auto refused = [&](const std::filesystem::path& file, std::string_view why) {
    auto r = log->remove_archived(file);
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(r.error().find(why) != std::string::npos, r.error());
    CHECK(r.error().find("nothing was removed") != std::string::npos);
    whole();
  };
  const auto good = archive_of(*log, 1, 150, "good.yna-archive");
  const auto cut = tmp.path / "cut.yna-archive";
  const std::string bytes = slurp(good);
  spit(cut, bytes.substr(0, bytes.size() - 30));
  refused(cut, "truncated");
  temp_dir other_dir;
  auto other = log_of(other_dir, 200);
  refused(archive_of(*other, 1, 150, "foreign.yna-archive"), "another log");
  refused(archive_of(*log, 151, 200, "later.yna-archive"), "out of order");
  refused(archive_of(*log, 1, 301, "live.yna-archive"), "call CLIVE");
  refused(archive_of(*log, 1, 302, "all.yna-archive"), "last event");

  // Then the good one goes, and the same file again is refused.
  REQUIRE(log->remove_archived(good).has_value());
  auto r = log->remove_archived(good);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().find("archived already") != std::string::npos);
  CHECK(log->anchor().seq == 150);
}

TEST_CASE("remove_archived cut short after the anchor: reads skip the rest, verify passes, purge finishes it") {
  temp_dir tmp;
  std::vector<std::pair<event_seq, std::string>> records;  // events 1..150 as stored
  {
    auto log = calls_log(tmp);
    REQUIRE(log->scan(1, 150, [&](const engine::event& e, std::string_view raw) {
      records.emplace_back(e.seq, std::string(raw));
      return true;
    }).has_value());
    const auto file = tmp.path / "older.yna-archive";
    REQUIRE(storage::write_archive(*log, 1, 150, file).has_value());
    REQUIRE(log->remove_archived(file).has_value());
  }
  {  // Put the second half of the range back, as a purge killed half way leaves it.
    raw_db raw(tmp.log());
    for (const auto& [seq, rec] : records) {
      if (seq <= 75) continue;
      auto e = engine::decode_event(rec);
      REQUIRE(e.has_value());
      REQUIRE(raw.db->Put({}, raw.cf(storage::detail::cf_events), storage::detail::seq_key(seq), rec).ok());
      std::string scratch;
      const auto ids = storage::detail::ids_of(*e, scratch);
      for (int k = 0; k < storage::detail::index_kind_count; ++k)
        for (auto id : ids.of[k])
          REQUIRE(raw.db->Put({}, raw.cf(storage::detail::index_cf(static_cast<storage::detail::index_kind>(k))),
                              storage::detail::index_key(id, seq), "").ok());
    }
  }
  auto log = open_log(tmp.log());
  CHECK(log->anchor().seq == 150);
  CHECK(log->seqs_by_call("C30").empty());  // events 91..93 are back on disk, not in the live log
  CHECK(first_readable(*log) == 151);
  CHECK(log->load_call("C30")->retired);
  auto v = log->verify();
  CHECK_MESSAGE(v.ok, v.problem);
  auto purged = log->purge_archived();
  REQUIRE(purged.has_value());
  CHECK(*purged == 75);
  CHECK(*log->purge_archived() == 0);
  log.reset();
  raw_db raw(tmp.log());
  std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator({}, raw.cf(storage::detail::cf_events)));
  it->SeekToFirst();
  REQUIRE(it->Valid());
  CHECK(storage::detail::parse_seq_key(it->key().ToStringView()) == std::optional<event_seq>(151));
}

// ------------------------------------------------------------------ delivery cursors (contract §13)

namespace {

// set_cursor is queued on the writer thread: waits until the cursor reads back as `seq`.
void set_cursor_wait(storage::event_log& log, const std::string& name, std::optional<event_seq> seq) {
  REQUIRE(log.set_cursor(name, seq));
  REQUIRE(wait_until([&] {
    const auto c = log.cursors();
    const auto it = c.find(name);
    return seq ? (it != c.end() && it->second == *seq) : it == c.end();
  }));
}

}  // namespace

TEST_CASE("delivery cursors: set, read back after reopen, removed; events_after reads in order, bounded") {
  temp_dir tmp;
  {
    auto log = log_of(tmp, 30);
    CHECK(log->cursors().empty());
    set_cursor_wait(*log, "webhook:http://a/x", 12);
    set_cursor_wait(*log, "webhook:http://b/y", 30);
    set_cursor_wait(*log, "webhook:http://a/x", 17);  // moves
    auto evs = log->events_after(17, 5);
    REQUIRE(evs.size() == 5);
    for (std::size_t i = 0; i < evs.size(); ++i) CHECK(evs[i].seq == 18 + i);
    CHECK(log->events_after(28, 100).size() == 2);
    CHECK(log->events_after(30, 100).empty());
    CHECK(log->acknowledged_seq() == 30);
  }
  auto log = open_log(tmp.log());
  const auto c = log->cursors();
  REQUIRE(c.size() == 2);
  CHECK(c.at("webhook:http://a/x") == 17);
  CHECK(c.at("webhook:http://b/y") == 30);
  set_cursor_wait(*log, "webhook:http://b/y", std::nullopt);
  CHECK(log->cursors().size() == 1);
}

TEST_CASE("remove_archived refuses a range past a delivery cursor, and goes once the cursor has passed it") {
  temp_dir tmp;
  auto log = calls_log(tmp);
  const auto file = tmp.path / "first.yna-archive";
  REQUIRE(storage::write_archive(*log, 1, 150, file).has_value());
  set_cursor_wait(*log, "webhook:http://slow/hook", 120);
  auto r = log->remove_archived(file);
  REQUIRE_FALSE(r.has_value());
  CHECK_MESSAGE(r.error().find("delivery cursor webhook:http://slow/hook is at event 120") != std::string::npos,
                r.error());
  CHECK(log->anchor().seq == 0);
  set_cursor_wait(*log, "webhook:http://slow/hook", 150);
  auto ok = log->remove_archived(file);
  CHECK_MESSAGE(ok.has_value(), fail_text(ok));
  CHECK(log->anchor().seq == 150);
}
