#include "storage/event_log.hpp"

#include <thread>

#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "log_fixture.hpp"

using namespace storage_test;
using engine::event_seq;
namespace sd = storage::detail;

namespace {

// Six events in two calls, written and closed; returns the folder's log path.
void write_six(const std::filesystem::path& dir) {
  auto log = open_log(dir);
  std::vector<engine::event> b{
      make_start(1, "CALLV", "111111", "222222", "tv1"), make_event(2, "CALLV", "222222", "tv2"),
      make_event(3, "CALLV", "222222", "tv3"),           make_start(4, "CALLW", "333333", "111111", "tv4"),
      make_event(5, "CALLW", "111111", "tv5"),           make_event(6, "CALLV", "111111", "tv6"),
  };
  REQUIRE(append_wait(*log, b).has_value());
}

storage::verify_report verify_closed(const std::filesystem::path& dir) {
  auto log = open_log(dir);
  return log->verify();
}

// Replaces `from` by `to` once in the stored record of `seq`.
void edit_record(const std::filesystem::path& dir, event_seq seq, std::string_view from, std::string_view to) {
  raw_db raw(dir);
  std::string rec = raw.get(sd::cf_events, sd::seq_key(seq));
  const auto at = rec.find(from);
  REQUIRE(at != std::string::npos);
  rec.replace(at, from.size(), to);
  raw.put(sd::cf_events, sd::seq_key(seq), rec);
}

}  // namespace

TEST_CASE("verify: a good log passes, with progress") {
  temp_dir tmp;
  write_six(tmp.log());
  auto log = open_log(tmp.log());
  std::vector<std::uint64_t> progress;
  const auto r = log->verify([&](std::uint64_t n) { progress.push_back(n); });
  CHECK_MESSAGE(r.ok, r.problem);
  CHECK(r.checked == 6);
  CHECK(r.last_seq == 6);
  CHECK(r.first_bad == 0);
  REQUIRE(!progress.empty());
  CHECK(progress.back() == 6);
}

TEST_CASE("verify: an empty log passes") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  const auto r = log->verify();
  CHECK(r.ok);
  CHECK(r.checked == 0);
}

TEST_CASE("verify: names the event whose bytes were changed") {
  temp_dir tmp;
  write_six(tmp.log());
  SUBCASE("a changed field that still decodes") {
    edit_record(tmp.log(), 3, "\"method\":\"POST\"", "\"method\":\"PUT\"");
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 3);
    CHECK(r.checked == 3);  // 1..3 walked; the break shows at 4's prev
    CHECK(r.problem.find("event 3 does not hash") != std::string::npos);
  }
  SUBCASE("a changed indexed field: caught by the index check first") {
    edit_record(tmp.log(), 3, "\"txn\":\"tv3\"", "\"txn\":\"tv9\"");
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 3);
    CHECK(r.problem.find("by_txn") != std::string::npos);
  }
  SUBCASE("the first event") {
    edit_record(tmp.log(), 1, "\"time\":", "\"time\":1");
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 1);
  }
  SUBCASE("a prev field") {
    std::string rec;
    {
      raw_db raw(tmp.log());
      rec = raw.get(sd::cf_events, sd::seq_key(5));
    }
    auto ev = engine::decode_event(rec);
    REQUIRE(ev.has_value());
    edit_record(tmp.log(), 5, ev->prev_hash, std::string(64, 'f'));
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 4);  // 4 no longer matches what 5 says it follows
  }
  SUBCASE("a record that no longer decodes") {
    edit_record(tmp.log(), 2, "{", "[");
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 2);
    CHECK(r.problem.find("decode") != std::string::npos);
  }
  SUBCASE("a record that claims another seq") {
    edit_record(tmp.log(), 4, "\"seq\":4", "\"seq\":7");
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 4);
    auto log = open_log(tmp.log());
    auto st = log->scan(1, 6, [](const engine::event&, std::string_view) { return true; });
    REQUIRE(!st.has_value());
    CHECK(st.error().code == storage::read_errc::seq_mismatch);
    CHECK(st.error().seq == 4);
  }
}

TEST_CASE("verify: detects a missing event") {
  temp_dir tmp;
  write_six(tmp.log());
  {
    raw_db raw(tmp.log());
    raw.del(sd::cf_events, sd::seq_key(4));
  }
  const auto r = verify_closed(tmp.log());
  CHECK(!r.ok);
  CHECK(r.first_bad == 4);
  CHECK(r.checked == 3);
  CHECK(r.problem.find("missing") != std::string::npos);
}

TEST_CASE("verify: checks the indexes both ways") {
  temp_dir tmp;
  write_six(tmp.log());
  SUBCASE("an event without its by_call entry") {
    {
      raw_db raw(tmp.log());
      raw.del(sd::cf_by_call, sd::index_key("CALLW", 5));
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 5);
    CHECK(r.problem.find("by_call") != std::string::npos);
  }
  SUBCASE("an event without one of its by_msisdn entries") {
    {
      raw_db raw(tmp.log());
      raw.del(sd::cf_by_msisdn, sd::index_key("111111", 4));  // 4 started a call to 111111
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 4);
  }
  SUBCASE("a by_txn entry pointing at an event that does not name it") {
    {
      raw_db raw(tmp.log());
      raw.put(sd::cf_by_txn, sd::index_key("tv6", 2), "");
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 2);
    CHECK(r.problem.find("by_txn") != std::string::npos);
  }
  SUBCASE("an entry pointing past the log") {
    {
      raw_db raw(tmp.log());
      raw.put(sd::cf_by_msisdn, sd::index_key("222222", 9), "");
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 9);
  }
}

TEST_CASE("verify: checks the /start keys (by_start) both ways") {
  temp_dir tmp;
  write_six(tmp.log());  // starts at 1 (CALLV, corr-1) and 4 (CALLW, corr-4)
  CHECK(verify_closed(tmp.log()).ok);
  SUBCASE("a /start without its by_start entry") {
    {
      raw_db raw(tmp.log());
      raw.del(sd::cf_by_start, sd::start_key("333333", "corr-4"));
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 4);
    CHECK(r.problem.find("by_start") != std::string::npos);
  }
  SUBCASE("a by_start entry naming another call") {
    {
      raw_db raw(tmp.log());
      raw.put(sd::cf_by_start, sd::start_key("111111", "corr-1"), "CALLW");
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.first_bad == 1);
    CHECK(r.problem.find("CALLW") != std::string::npos);
  }
  SUBCASE("a stray by_start entry (a key no /start wrote)") {
    {
      raw_db raw(tmp.log());
      raw.put(sd::cf_by_start, sd::start_key("111111", "corr-9"), "CALLV");
    }
    const auto r = verify_closed(tmp.log());
    CHECK(!r.ok);
    CHECK(r.problem.find("corr-9") != std::string::npos);
    CHECK(r.problem.find("does not have that key") != std::string::npos);
  }
}

TEST_CASE("verify: reads and verify agree while appends go on") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  constexpr event_seq batches = 150, per_batch = 4;
  std::thread writer([&] {
    for (event_seq i = 0; i < batches; ++i) {
      auto b = make_batch(1 + i * per_batch, per_batch);
      const bool ok = append_wait(*log, b).has_value();
      CHECK(ok);
      if (!ok) return;
    }
  });
  event_seq seen = 0;
  for (int rounds = 0; seen < batches * per_batch && rounds < 100000; ++rounds) {
    const auto r = log->verify();
    CHECK_MESSAGE(r.ok, r.problem);
    if (!r.ok) break;  // and join the writer: no REQUIRE while it runs
    CHECK(r.checked >= seen);  // one RocksDB snapshot per walk, never going back
    CHECK(r.checked % per_batch == 0);  // a batch is written whole or not at all
    seen = r.checked;
    event_seq scanned = 0;
    auto st = log->scan(1, seen, [&](const engine::event& e, std::string_view) { return e.seq == ++scanned; });
    CHECK(st.has_value());
    CHECK(scanned == seen);
  }
  writer.join();
  CHECK(log->verify().ok);
  CHECK(log->seqs_by_call("CALLODD").size() == batches * per_batch / 2);
}
