// The log's sync pipeline (issue 19): a batch is written without a sync and acknowledged
// only after a WAL sync that started after its write; the next batch is written while
// the last one syncs; readers see nothing unacknowledged; a failed sync fails every batch
// not yet acknowledged and none of them comes back.
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include "storage/event_log.hpp"
#include "storage/fault_env.hpp"
#include "log_fixture.hpp"

using namespace storage_test;
using engine::event_seq;
using engine::store_error;

namespace {

// Appends several batches back to back (without waiting in between) and collects the
// answers in the order they come.
struct answers {
  std::mutex mu;
  std::vector<std::pair<std::size_t, append_status>> got;
  std::promise<void> all;
  std::size_t expected = 0;

  void hand(storage::event_log& log, std::vector<std::vector<engine::event>>& batches) {
    expected = batches.size();
    for (std::size_t i = 0; i < batches.size(); ++i)
      log.append_async(batches[i], nullptr, [this, i](append_status s) {
        std::lock_guard lk(mu);
        got.emplace_back(i, s);
        if (got.size() == expected) all.set_value();
      });
  }
  bool wait() { return all.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready; }
};

std::vector<event_seq> scanned(const storage::event_log& log) {
  std::vector<event_seq> out;
  REQUIRE(log.scan(0, std::numeric_limits<event_seq>::max(), [&](const engine::event& e, std::string_view) {
                out.push_back(e.seq);
                return true;
              }).has_value());
  return out;
}

}  // namespace

TEST_CASE("pipeline: batches written while the last one syncs share the next sync, answered in order") {
  temp_dir tmp;
  storage::fault_env fe;
  auto log = open_log(tmp.log(), /*sync=*/true, fe.env());
  auto first = make_batch(1, 1);
  REQUIRE(append_wait(*log, first).has_value());

  // The first batch's sync is held until the writer has written all three: the other two
  // are written during it (a state waited for, not a delay hoped long enough).
  fe.hold_syncs(true);
  const auto syncs_before = fe.wal_syncs();
  const auto appends_before = fe.wal_appends();
  std::vector<std::vector<engine::event>> batches{make_batch(2, 1), make_batch(3, 2), make_batch(5, 1)};
  answers a;
  a.hand(*log, batches);
  const bool overlapped =
      wait_until([&] { return fe.wal_syncs() > syncs_before && fe.wal_appends() >= appends_before + 3; });
  fe.hold_syncs(false);
  REQUIRE(overlapped);
  REQUIRE(a.wait());

  REQUIRE(a.got.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(a.got[i].first == i);  // in the order handed over
    CHECK(a.got[i].second.has_value());
  }
  // The first batch synced alone; the others were written during its sync and went
  // together with the next one (one sync per batch would be 3).
  const auto syncs = fe.wal_syncs() - syncs_before;
  CHECK(syncs >= 1);
  CHECK(syncs < 3);
  CHECK(log->last_seq() == 5);
  CHECK(scanned(*log) == std::vector<event_seq>{1, 2, 3, 4, 5});
  const auto r = log->verify();
  CHECK_MESSAGE(r.ok, r.problem);
}

TEST_CASE("pipeline: a batch written but not yet synced is invisible to readers, here and in a secondary") {
  temp_dir tmp;
  storage::fault_env fe;
  auto log = open_log(tmp.log(), true, fe.env());
  auto first = make_batch(1, 1);
  REQUIRE(append_wait(*log, first).has_value());
  auto opened = storage::event_log::open_reader(tmp.log(), tmp.path / "scratch");
  REQUIRE(opened.has_value());
  auto reader = std::move(opened).value();
  REQUIRE(wait_until([&] { return reader->last_seq() == 1; }));  // the durable mark of an idle writer

  fe.hold_syncs(true);  // the batch is written, its sync waits until released
  const auto syncs_before = fe.wal_syncs();
  std::vector<std::vector<engine::event>> batches{make_batch(2, 2)};
  answers a;
  a.hand(*log, batches);
  // Its sync has started, so its write is done: RocksDB shows it, the log must not.
  const bool syncing = wait_until([&] { return fe.wal_syncs() > syncs_before; });
  const auto seen = log->get(2);
  const auto scan = scanned(*log);
  const auto by_call = log->seqs_by_call("CALLEVEN");
  const auto reader_last = reader->last_seq();
  const auto reader_seen = reader->get(3);
  const auto last = log->last_seq();
  fe.hold_syncs(false);
  REQUIRE(syncing);
  CHECK(last == 1);
  CHECK_FALSE(seen.has_value());
  CHECK(scan == std::vector<event_seq>{1});
  CHECK(by_call.empty());
  CHECK(reader_last == 1);
  CHECK_FALSE(reader_seen.has_value());
  REQUIRE(a.wait());
  CHECK(a.got[0].second.has_value());
  CHECK(log->get(2).has_value());
  CHECK(scanned(*log) == std::vector<event_seq>{1, 2, 3});
  CHECK(wait_until([&] { return reader->last_seq() == 3 && reader->get(3).has_value(); }));
}

TEST_CASE("pipeline: a failed sync fails the batch in flight behind it; nothing acknowledged is lost, nothing else shows") {
  temp_dir tmp;
  storage::fault_env fe;
  auto warnings = std::make_shared<std::vector<std::string>>();
  {
    auto log = open_log(tmp.log(), true, fe.env(), warnings);
    auto acked = make_batch(1, 2);
    REQUIRE(append_wait(*log, acked).has_value());

    // The next sync fails; it is held until a second batch has been written during it.
    fe.hold_syncs(true);
    fe.arm(storage::wal_fault::sync_io_error, 1);
    const auto syncs_before = fe.wal_syncs();
    const auto appends_before = fe.wal_appends();
    std::vector<std::vector<engine::event>> batches{{make_start(3, "LOST1", "777777", "888888", "txn-l1")},
                                                    {make_start(4, "LOST2", "777777", "999999", "txn-l2")}};
    answers a;
    a.hand(*log, batches);
    const bool overlapped =
        wait_until([&] { return fe.wal_syncs() > syncs_before && fe.wal_appends() >= appends_before + 2; });
    fe.hold_syncs(false);
    REQUIRE(overlapped);
    REQUIRE(a.wait());
    REQUIRE(a.got.size() == 2);
    CHECK(a.got[0].first == 0);
    CHECK(a.got[1].first == 1);
    CHECK(a.got[0].second.error() == store_error::io_error);
    CHECK(a.got[1].second.error() == store_error::io_error);
    CHECK(log->last_seq() == 2);
    CHECK_FALSE(log->get(3).has_value());
    CHECK_FALSE(log->get(4).has_value());
    CHECK(log->seqs_by_call("LOST1").empty());
    CHECK(scanned(*log) == std::vector<event_seq>{1, 2});

    // The writer renumbers from the failed batch: 3 again, on a reopened log.
    std::vector<engine::event> kept{make_start(3, "KEPT", "121212", "343434", "txn-kept")};
    REQUIRE(append_wait(*log, kept).has_value());
    CHECK(log->get(3)->call_id == "KEPT");
    CHECK(log->seqs_by_call("LOST2").empty());
    CHECK(log->seqs_by_msisdn("777777").empty());
    CHECK(log->last_seq() == 3);
    const auto r = log->verify();
    CHECK_MESSAGE(r.ok, r.problem);
  }
  bool reopened_log = false;
  for (const auto& w : *warnings) reopened_log = reopened_log || w.find("reopening") != std::string::npos;
  CHECK(reopened_log);
  auto reopened = open_log(tmp.log());
  CHECK(reopened->last_seq() == 3);
  CHECK(scanned(*reopened) == std::vector<event_seq>{1, 2, 3});
  CHECK(reopened->get(3)->call_id == "KEPT");
  CHECK(reopened->seqs_by_call("LOST1").empty());
  const auto r = reopened->verify();
  CHECK_MESSAGE(r.ok, r.problem);
}

TEST_CASE("pipeline: a batch numbered past a failed one fails with it, without a corruption warning") {
  temp_dir tmp;
  storage::fault_env fe;
  auto warnings = std::make_shared<std::vector<std::string>>();
  auto log = open_log(tmp.log(), true, fe.env(), warnings);
  auto acked = make_batch(1, 1);
  REQUIRE(append_wait(*log, acked).has_value());
  log->fail_next_append(store_error::io_error);
  std::vector<std::vector<engine::event>> batches{make_batch(2, 1), make_batch(3, 1)};
  answers a;
  a.hand(*log, batches);
  REQUIRE(a.wait());
  CHECK(a.got[0].second.error() == store_error::io_error);
  CHECK(a.got[1].second.error() == store_error::io_error);
  for (const auto& w : *warnings) CHECK(w.find("append refused") == std::string::npos);
  auto again = make_batch(2, 1);
  REQUIRE(append_wait(*log, again).has_value());
  CHECK(log->last_seq() == 2);
}
