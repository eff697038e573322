#include "storage/event_log.hpp"

#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "engine/decide.hpp"

#include "engine/codec.hpp"
#include "schemas/digest.hpp"
#include "log_fixture.hpp"

using namespace storage_test;
using engine::event_seq;
using engine::store_error;

namespace {

struct stored {
  std::vector<engine::event> events;
  std::vector<std::string> raw;
};

stored scan_all(const storage::event_log& log, event_seq from = 1, event_seq to = 1000) {
  stored s;
  auto st = log.scan(from, to, [&](const engine::event& e, std::string_view raw) {
    s.events.push_back(e);
    s.raw.emplace_back(raw);
    return true;
  });
  REQUIRE(st.has_value());
  return s;
}

std::vector<event_seq> seqs_of(const stored& s) {
  std::vector<event_seq> v;
  for (const auto& e : s.events) v.push_back(e.seq);
  return v;
}

std::string hash_of(std::string_view raw) { return schemas::to_hex(schemas::sha256(raw)); }

}  // namespace

TEST_CASE("event_log: append, scan and get round-trip every field") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  CHECK(log->last_seq() == 0);
  CHECK(!log->get(1).has_value());

  std::vector<engine::event> b1{make_start(1, "CALLA", "14250000001", "14250000002", "txn-1"),
                                make_event(2, "CALLA", "14250000002", "txn-2")};
  b1[1].rejected = schemas::reason_code::offer_pending;
  b1[1].status_after.reset();
  REQUIRE(append_wait(*log, b1).has_value());
  auto b2 = make_batch(3, 3);
  REQUIRE(append_wait(*log, b2).has_value());
  CHECK(log->last_seq() == 5);

  const auto all = scan_all(*log);
  REQUIRE(all.events.size() == 5);
  CHECK(seqs_of(all) == std::vector<event_seq>{1, 2, 3, 4, 5});
  // What was stored is exactly what the writer encoded (prev_hash filled in place).
  CHECK(all.raw[0] == engine::encode_event(b1[0]));
  CHECK(all.raw[1] == engine::encode_event(b1[1]));
  CHECK(all.raw[4] == engine::encode_event(b2[2]));
  CHECK(all.events[0].from == "14250000001");
  CHECK(all.events[0].to == "14250000002");
  CHECK(all.events[0].sdp == b1[0].sdp);
  CHECK(all.events[0].client_correlator == "corr-1");
  CHECK(all.events[1].rejected == schemas::reason_code::offer_pending);
  CHECK(all.events[3].txn_id == "txn-4");

  auto third = log->get(3);
  REQUIRE(third.has_value());
  CHECK(engine::encode_event(*third) == all.raw[2]);
  CHECK(!log->get(6).has_value());
  CHECK(!log->get(0).has_value());

  SUBCASE("a sub-range") { CHECK(seqs_of(scan_all(*log, 2, 4)) == std::vector<event_seq>{2, 3, 4}); }
  SUBCASE("fn returning false stops the scan") {
    std::vector<event_seq> seen;
    auto st = log->scan(1, 5, [&](const engine::event& e, std::string_view) {
      seen.push_back(e.seq);
      return e.seq < 2;
    });
    CHECK(st.has_value());
    CHECK(seen == std::vector<event_seq>{1, 2});
  }
  SUBCASE("an empty range") { CHECK(scan_all(*log, 4, 3).events.empty()); }
}

TEST_CASE("event_log: prev hashes chain the sha256 of the raw records, as memory_store does") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  engine::memory_store reference;
  for (event_seq first : {1, 3, 6}) {
    auto b = make_batch(first, first == 1 ? 2 : 3);
    auto copy = b;
    REQUIRE(append_wait(*log, b).has_value());
    reference.append_async(copy, [](append_status s) { REQUIRE(s.has_value()); });
  }
  const auto all = scan_all(*log);
  REQUIRE(all.events.size() == 8);
  CHECK(all.events[0].prev_hash == std::string(64, '0'));
  for (std::size_t i = 1; i < all.events.size(); ++i) {
    CAPTURE(i);
    CHECK(all.events[i].prev_hash == hash_of(all.raw[i - 1]));
    CHECK(all.events[i].prev_hash.size() == 64);
  }
  const auto ref = reference.events();
  REQUIRE(ref.size() == all.events.size());
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(ref[i].prev_hash == all.events[i].prev_hash);
}

TEST_CASE("event_log: survives close and reopen; the chain continues") {
  temp_dir tmp;
  std::string raw3;
  {
    auto log = open_log(tmp.log(), /*sync=*/true);
    auto b = make_batch(1, 3);
    REQUIRE(append_wait(*log, b).has_value());
    raw3 = engine::encode_event(b[2]);
  }
  auto log = open_log(tmp.log(), true);
  CHECK(log->last_seq() == 3);
  auto refused = make_batch(1, 1);
  CHECK(append_wait(*log, refused).error() == store_error::corruption);
  auto b = make_batch(4, 2);
  REQUIRE(append_wait(*log, b).has_value());
  CHECK(b[0].prev_hash == hash_of(raw3));
  const auto all = scan_all(*log);
  REQUIRE(all.events.size() == 5);
  CHECK(all.raw[2] == raw3);
  CHECK(all.events[3].prev_hash == hash_of(all.raw[2]));
  CHECK(all.events[4].prev_hash == hash_of(all.raw[3]));
  const auto report = log->verify();
  CHECK_MESSAGE(report.ok, report.problem);
  CHECK(report.checked == 5);
}

TEST_CASE("event_log: indexes by call, msisdn and transaction") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  std::vector<engine::event> b{
      make_start(1, "CALLA", "111111", "222222", "t1"),
      make_event(2, "CALLA", "222222", "t2"),
      make_start(3, "CALLB", "222222", "333333", "t3"),
      make_event(4, "CALLA", "222222", "t2"),  // a retried request: same transaction id
      make_event(5, "CALLAB", "111111", "t5"),
      make_event(6, std::string("CALLA\0X", 7), "444444", "t6"),
      make_event(7, "", "555555", ""),  // rejected before it named a call: no call, no txn entry
  };
  REQUIRE(append_wait(*log, b).has_value());

  CHECK(log->seqs_by_call("CALLA") == std::vector<event_seq>{1, 2, 4});
  CHECK(log->seqs_by_call("CALLAB") == std::vector<event_seq>{5});
  CHECK(log->seqs_by_call(std::string_view("CALLA\0X", 7)) == std::vector<event_seq>{6});
  CHECK(log->seqs_by_call("CALL").empty());
  CHECK(log->seqs_by_call("").empty());

  CHECK(log->seqs_by_msisdn("222222") == std::vector<event_seq>{1, 2, 3, 4});
  CHECK(log->seqs_by_msisdn("111111") == std::vector<event_seq>{1, 5});
  CHECK(log->seqs_by_msisdn("333333") == std::vector<event_seq>{3});
  CHECK(log->seqs_by_msisdn("555555") == std::vector<event_seq>{7});
  CHECK(log->seqs_by_msisdn("222222", 2, 3) == std::vector<event_seq>{2, 3});
  CHECK(log->seqs_by_msisdn("222222", 4) == std::vector<event_seq>{4});
  CHECK(log->seqs_by_msisdn("222222", 5).empty());
  CHECK(log->seqs_by_msisdn("22222").empty());

  CHECK(log->seqs_by_txn("t2") == std::vector<event_seq>{2, 4});
  CHECK(log->seqs_by_txn("t1") == std::vector<event_seq>{1});
  CHECK(log->seqs_by_txn("t").empty());
  const auto report = log->verify();
  CHECK_MESSAGE(report.ok, report.problem);
}

TEST_CASE("event_log: call states are written with their batch; retired ones are deleted; the state seq follows") {
  temp_dir tmp;
  auto state_of = [](const engine::event& start) {
    engine::call_state c;
    engine::apply(c, start);
    return c;
  };
  {
    auto log = open_log(tmp.log());
    auto p = log->load_persisted();
    REQUIRE(p.has_value());
    CHECK(p->seq == 0);
    CHECK(p->calls.empty());
    std::vector<engine::event> b{make_start(1, "CA", "121212", "343434", "t1"), make_start(2, "CB", "121212", "565656", "t2")};
    const std::vector<engine::call_change> changes{{"CA", state_of(b[0])}, {"CB", state_of(b[1])}};
    REQUIRE(append_wait(*log, b, &changes).has_value());
    p = log->load_persisted();
    REQUIRE(p.has_value());
    CHECK(p->seq == 2);
    REQUIRE(p->calls.size() == 2);
    CHECK(engine::encode_call(p->calls[0]) == engine::encode_call(changes[0].after.value()));
    // Events only: the state seq stays where it was.
    auto more = make_batch(3, 2);
    REQUIRE(append_wait(*log, more).has_value());
    CHECK(log->load_persisted()->seq == 2);
    // A retired call is deleted.
    std::vector<engine::event> retire{make_event(5, "CA", "", "t5", engine::action::retire)};
    const std::vector<engine::call_change> gone{{"CA", std::nullopt}};
    REQUIRE(append_wait(*log, retire, &gone).has_value());
  }
  auto log = open_log(tmp.log());
  auto p = log->load_persisted();
  REQUIRE(p.has_value());
  CHECK(p->seq == 5);
  REQUIRE(p->calls.size() == 1);
  CHECK(p->calls[0].call_id == "CB");
  // The /start keys stay in the log's index after the call is gone (contract §9).
  CHECK(log->find_start("121212", "corr-1") == std::optional<std::string>("CA"));
  CHECK(log->find_start("121212", "corr-2") == std::optional<std::string>("CB"));
  CHECK_FALSE(log->find_start("121212", "corr-3").has_value());
  CHECK_FALSE(log->find_start("343434", "corr-1").has_value());
}

TEST_CASE("event_log: load_call folds a call from its events; persist_calls writes states outside an append") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  engine::event start = make_start(1, "CF", "121212", "343434", "t1");
  engine::event ring = make_event(2, "CF", "343434", "t2");
  ring.from = "121212";
  ring.to = "343434";
  engine::event stranger = make_event(3, "CF", "999999", "t3");
  stranger.rejected = schemas::reason_code::forbidden;
  stranger.status_after.reset();
  std::vector<engine::event> b{start, ring, stranger, make_start(4, "OTHER", "121212", "343434", "t4")};
  REQUIRE(append_wait(*log, b).has_value());
  auto c = log->load_call("CF");
  REQUIRE(c.has_value());
  CHECK(c->status == engine::call_status::ringing);
  CHECK(c->event_count == 2);  // the rejected event changes nothing
  CHECK(c->last_seq == 2);
  CHECK_FALSE(c->retired);
  CHECK_FALSE(log->load_call("NOPE").has_value());
  CHECK_FALSE(log->load_call("C").has_value());  // a prefix of nothing

  REQUIRE(log->persist_calls({{"CF", *c}}, 4).has_value());
  auto p = log->load_persisted();
  REQUIRE(p.has_value());
  CHECK(p->seq == 4);
  REQUIRE(p->calls.size() == 1);
  CHECK(engine::encode_call(p->calls[0]) == engine::encode_call(*c));
}

TEST_CASE("event_log: fail_next_append fails exactly one append and writes nothing") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  std::vector<std::pair<std::size_t, bool>> observed;
  std::mutex mu;
  log->set_sync_observer([&](std::size_t n, double secs, bool ok) {
    std::lock_guard lk(mu);
    CHECK(secs >= 0.0);
    observed.emplace_back(n, ok);
  });
  auto b1 = make_batch(1, 2);
  REQUIRE(append_wait(*log, b1).has_value());

  log->fail_next_append(store_error::no_space);
  std::vector<engine::event> doomed{make_start(3, "DOOMED", "777777", "888888", "txn-doomed")};
  auto failed = append_wait(*log, doomed);
  REQUIRE(!failed.has_value());
  CHECK(failed.error() == store_error::no_space);
  CHECK(log->last_seq() == 2);
  CHECK(!log->get(3).has_value());
  CHECK(log->seqs_by_call("DOOMED").empty());
  CHECK(log->seqs_by_msisdn("777777").empty());
  CHECK(log->seqs_by_txn("txn-doomed").empty());

  auto b2 = make_batch(3, 2);
  REQUIRE(append_wait(*log, b2).has_value());
  CHECK(log->last_seq() == 4);
  const auto all = scan_all(*log);
  REQUIRE(all.events.size() == 4);
  CHECK(all.events[2].prev_hash == hash_of(all.raw[1]));
  const auto report = log->verify();
  CHECK_MESSAGE(report.ok, report.problem);
  std::lock_guard lk(mu);
  CHECK(observed == std::vector<std::pair<std::size_t, bool>>{{2, true}, {1, false}, {2, true}});
}

TEST_CASE("event_log: a batch that does not continue the log is refused") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  auto b = make_batch(1, 2);
  REQUIRE(append_wait(*log, b).has_value());

  SUBCASE("a gap") {
    auto gap = make_batch(4, 1);
    CHECK(append_wait(*log, gap).error() == store_error::corruption);
  }
  SUBCASE("a repeat") {
    auto again = make_batch(2, 2);
    CHECK(append_wait(*log, again).error() == store_error::corruption);
  }
  SUBCASE("not consecutive inside the batch") {
    auto holes = make_batch(3, 3);
    holes[2].seq = 6;
    CHECK(append_wait(*log, holes).error() == store_error::corruption);
  }
  CHECK(log->last_seq() == 2);
  CHECK(!log->get(3).has_value());
  CHECK(log->seqs_by_txn("txn-3").empty());
  auto next = make_batch(3, 1);
  REQUIRE(append_wait(*log, next).has_value());
  CHECK(log->last_seq() == 3);
}

TEST_CASE("event_log: an empty batch succeeds and writes nothing") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  std::vector<engine::event> none;
  CHECK(append_wait(*log, none).has_value());
  CHECK(log->last_seq() == 0);
}

TEST_CASE("event_log: closing finishes the append in flight") {
  temp_dir tmp;
  auto b = make_batch(1, 50);
  std::atomic<int> done_calls{0};
  std::atomic<bool> ok{false};
  {
    auto log = open_log(tmp.log(), true);
    log->append_async(b, [&](append_status s) {
      ok = s.has_value();
      ++done_calls;
    });
  }
  CHECK(done_calls == 1);
  CHECK(ok);
  auto log = open_log(tmp.log());
  CHECK(log->last_seq() == 50);
}

TEST_CASE("event_log: open refuses a second writer, another format, and a missing log") {
  temp_dir tmp;
  auto log = open_log(tmp.log());
  auto b = make_batch(1, 1);
  REQUIRE(append_wait(*log, b).has_value());

  storage::log_options o;
  o.dir = tmp.log();
  auto second = storage::event_log::open(o);
  REQUIRE(!second.has_value());
  CHECK(second.error().code == storage::open_errc::locked);

  auto missing = storage::event_log::open_reader(tmp.path / "nothing-here", tmp.path / "scratch");
  REQUIRE(!missing.has_value());
  CHECK(missing.error().code == storage::open_errc::not_found);

  log.reset();
  {
    raw_db raw(tmp.log());
    raw.put(storage::detail::cf_meta, "format_version", "2");
  }
  auto other = storage::event_log::open(o);
  REQUIRE(!other.has_value());
  CHECK(other.error().code == storage::open_errc::unsupported_version);
}

TEST_CASE("event_log: open_reader follows a live writer") {
  temp_dir tmp;
  auto writer = open_log(tmp.log(), true);
  std::vector<engine::event> b{make_start(1, "CALLR", "121212", "343434", "tr1"), make_event(2, "CALLR", "343434", "tr2")};
  REQUIRE(append_wait(*writer, b).has_value());

  auto opened = storage::event_log::open_reader(tmp.log(), tmp.path / "scratch");
  REQUIRE_MESSAGE(opened.has_value(), (opened ? std::string() : opened.error().detail));
  auto reader = std::move(opened).value();
  CHECK(reader->is_reader());
  // A reader beside a live writer sees what the writer acknowledged (its durable mark,
  // written just after each sync).
  auto sees = [&](event_seq last) { return wait_until([&] { return reader->last_seq() == last; }); };
  CHECK(sees(2));

  std::vector<engine::event> more{make_event(3, "CALLR", "121212", "tr3"), make_event(4, "CALLR", "343434", "tr4")};
  REQUIRE(append_wait(*writer, more).has_value());
  engine::call_state kept;
  kept.call_id = "CALLR";
  kept.from = "121212";
  const std::vector<engine::call_change> state{{"CALLR", kept}};
  auto last = make_batch(5, 1);
  REQUIRE(append_wait(*writer, last, &state).has_value());

  REQUIRE(reader->catch_up().has_value());
  CHECK(sees(5));
  CHECK(seqs_of(scan_all(*reader)) == std::vector<event_seq>{1, 2, 3, 4, 5});
  REQUIRE(reader->get(4).has_value());
  CHECK(reader->get(4)->txn_id == "tr4");
  CHECK(reader->seqs_by_call("CALLR") == std::vector<event_seq>{1, 2, 3, 4});
  CHECK(reader->seqs_by_msisdn("121212") == std::vector<event_seq>{1, 3});
  auto persisted = reader->load_persisted();
  REQUIRE(persisted.has_value());
  CHECK(persisted->seq == 5);
  REQUIRE(persisted->calls.size() == 1);
  CHECK(persisted->calls[0].from == "121212");
  const auto report = reader->verify();
  CHECK_MESSAGE(report.ok, report.problem);
  CHECK(report.checked == 5);

  auto refused = make_batch(6, 1);
  CHECK(append_wait(*reader, refused).error() == store_error::closed);
  CHECK(writer->last_seq() == 5);
}
