#include "storage/event_log.hpp"

#include <chrono>
#include <map>
#include <thread>

#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "engine/decide.hpp"
#include "storage/fault_env.hpp"
#include "storage/state.hpp"
#include "log_fixture.hpp"
#include "schemas/digest.hpp"

using namespace storage_test;
using engine::event_seq;
using engine::store_error;

namespace {

// Appends `make(first)` until it succeeds (RocksDB may still be recovering by
// itself), at most for 10 s; returns the successful attempt's events.
template <class Make>
std::vector<engine::event> append_until_ok(storage::event_log& log, Make make) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto b = make();
    if (append_wait(log, b).has_value()) return b;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool any_contains(const std::vector<std::string>& lines, std::string_view what) {
  for (const auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}

void check_consistent(const storage::event_log& log, event_seq last) {
  CHECK(log.last_seq() == last);
  const auto r = log.verify();
  CHECK_MESSAGE(r.ok, r.problem);
  CHECK(r.checked == last);
}

}  // namespace

TEST_CASE("recovery: a full disk fails the append with no_space; service returns once space is back") {
  temp_dir tmp;
  storage::fault_env fe;
  auto warnings = std::make_shared<std::vector<std::string>>();
  {
    auto log = open_log(tmp.log(), /*sync=*/true, fe.env(), warnings);
    auto b = make_batch(1, 2);
    REQUIRE(append_wait(*log, b).has_value());

    fe.arm(storage::wal_fault::append_no_space);
    std::vector<engine::event> doomed{make_start(3, "DOOMED", "777777", "888888", "txn-doomed")};
    auto failed = append_wait(*log, doomed);
    REQUIRE(!failed.has_value());
    CHECK(failed.error() == store_error::no_space);
    auto again = make_batch(3, 1);
    CHECK(append_wait(*log, again).error() == store_error::no_space);  // still full
    CHECK(log->last_seq() == 2);
    CHECK(!log->get(3).has_value());
    CHECK(log->seqs_by_call("DOOMED").empty());
    CHECK(log->get(2).has_value());  // reads go on meanwhile

    fe.arm(storage::wal_fault::none);
    const auto kept = append_until_ok(*log, [] { return make_batch(3, 1); });
    CHECK(kept[0].prev_hash == schemas::to_hex(schemas::sha256(engine::encode_event(*log->get(2)))));
    auto next = make_batch(4, 1);
    REQUIRE(append_wait(*log, next).has_value());
    check_consistent(*log, 4);
  }
  CHECK(any_contains(*warnings, "No space"));
  auto reopened = open_log(tmp.log());
  check_consistent(*reopened, 4);
  CHECK(reopened->seqs_by_call("DOOMED").empty());
}

TEST_CASE("recovery: after a WAL sync error the log is reopened and the failed batch does not come back") {
  temp_dir tmp;
  storage::fault_env fe;
  auto warnings = std::make_shared<std::vector<std::string>>();
  {
    auto log = open_log(tmp.log(), true, fe.env(), warnings);
    auto b = make_batch(1, 2);
    REQUIRE(append_wait(*log, b).has_value());

    // Call states persisted with an acknowledged batch, then changed by the lost one.
    std::vector<engine::event> acked{make_start(3, "ACKED", "121212", "343434", "txn-acked")};
    engine::call_state acked_state;
    engine::apply(acked_state, acked[0]);
    const std::vector<engine::call_change> acked_changes{{"ACKED", acked_state}};
    REQUIRE(append_wait(*log, acked, &acked_changes).has_value());

    fe.arm(storage::wal_fault::sync_io_error);
    std::vector<engine::event> lost{make_start(4, "LOST", "777777", "888888", "txn-lost"),
                                    make_event(5, "ACKED", "343434", "txn-lost-ring")};
    engine::call_state lost_state;
    engine::apply(lost_state, lost[0]);
    engine::call_state rung = acked_state;
    engine::apply(rung, lost[1]);
    const std::vector<engine::call_change> lost_changes{{"LOST", lost_state}, {"ACKED", rung}};
    auto failed = append_wait(*log, lost, &lost_changes);
    REQUIRE(!failed.has_value());
    CHECK(failed.error() == store_error::io_error);
    CHECK(log->last_seq() == 3);
    CHECK(!log->get(4).has_value());

    fe.arm(storage::wal_fault::none);
    std::vector<engine::event> kept{make_start(4, "KEPT", "121212", "343434", "txn-kept")};
    REQUIRE(append_wait(*log, kept).has_value());
    // The lost batch was complete in the WAL: the reopen replayed it and the scrub
    // removed it again (this is what proves the scenario really happened).
    CHECK(any_contains(*warnings, "reopening"));
    CHECK(any_contains(*warnings, "removing 2 unacknowledged events after seq 3"));
    REQUIRE(log->get(4).has_value());
    CHECK(log->get(4)->call_id == "KEPT");
    CHECK(log->seqs_by_call("LOST").empty());
    CHECK(log->seqs_by_msisdn("777777").empty());
    CHECK(log->seqs_by_txn("txn-lost").empty());
    check_consistent(*log, 4);
  }
  auto reopened = open_log(tmp.log());
  check_consistent(*reopened, 4);
  CHECK(reopened->get(4)->call_id == "KEPT");
  CHECK(reopened->seqs_by_call("LOST").empty());
  // The call states the lost batch wrote are back to the acknowledged fold (contract §9).
  CHECK_FALSE(reopened->find_start("777777", "corr-4").has_value());
  auto p = reopened->load_persisted();
  REQUIRE(p.has_value());
  CHECK(p->seq == 3);
  REQUIRE(p->calls.size() == 1);
  CHECK(p->calls[0].call_id == "ACKED");
  CHECK(p->calls[0].status == engine::call_status::initial);
}

TEST_CASE("recovery: after a WAL write error the next append succeeds") {
  temp_dir tmp;
  storage::fault_env fe;
  auto log = open_log(tmp.log(), true, fe.env());
  auto b = make_batch(1, 3);
  engine::call_state state;
  state.call_id = "CALLODD";
  const std::vector<engine::call_change> changes{{"CALLODD", state}};
  REQUIRE(append_wait(*log, b, &changes).has_value());

  fe.arm(storage::wal_fault::append_io_error);
  auto doomed = make_batch(4, 2);
  CHECK(append_wait(*log, doomed).error() == store_error::io_error);
  fe.arm(storage::wal_fault::none);
  auto next = make_batch(4, 2);
  REQUIRE(append_wait(*log, next).has_value());
  check_consistent(*log, 5);
  auto p = log->load_persisted();
  REQUIRE(p.has_value());
  CHECK(p->seq == 3);  // the appends after carried no state
  CHECK(p->calls.size() == 1);
}

namespace {

engine::event pusher_event(engine::event_seq seq, engine::action act, std::string device, std::string pushkey,
                           std::string txn) {
  engine::event e;
  e.seq = seq;
  e.time = 1764200000000 + static_cast<engine::epoch_ms>(seq);
  e.act = act;
  e.msisdn = "14250000001";
  e.sub = "alice";
  e.device_id = device;
  e.txn_id = std::move(txn);
  e.method = act == engine::action::register_pusher ? "POST" : "DELETE";
  e.path = "/pushers";
  engine::pusher p;
  p.sub = "alice";
  p.device_id = std::move(device);
  if (act == engine::action::register_pusher) {
    p.msisdns = {"14250000001"};
    p.url = "https://push.example.com/_matrix/push/v1/notify";
    p.app_id = "app";
    p.pushkey = std::move(pushkey);
    p.expires_at = 1764300000000;
  }
  e.push = std::move(p);
  return e;
}

engine::side_changes changes_after(const std::vector<engine::event>& batch) {
  engine::side_changes out;
  for (const auto& e : batch) {
    engine::pusher_change c{e.push->sub, e.push->device_id, std::nullopt};
    if (e.act == engine::action::register_pusher) {
      c.after = *e.push;
      c.after->since = e.seq;
    }
    out.pushers.push_back(std::move(c));
  }
  return out;
}

}  // namespace

TEST_CASE("push registrations: persisted with their batch, loaded at start-up, and a failed batch's undone") {
  temp_dir tmp;
  storage::fault_env fe;
  const std::vector<engine::call_change> no_calls;
  auto warnings = std::make_shared<std::vector<std::string>>();
  {
    auto log = open_log(tmp.log(), true, fe.env(), warnings);
    std::vector<engine::event> b{pusher_event(1, engine::action::register_pusher, "phone", "pk-1", "t1"),
                                 pusher_event(2, engine::action::register_pusher, "tablet", "pk-2", "t2")};
    auto ch = changes_after(b);
    REQUIRE(append_wait(*log, b, &no_calls, &ch).has_value());

    // A lost batch replaces phone's pushkey and removes tablet: both undone by the scrub.
    fe.arm(storage::wal_fault::sync_io_error);
    std::vector<engine::event> lost{pusher_event(3, engine::action::register_pusher, "phone", "pk-LOST", "t3"),
                                    pusher_event(4, engine::action::unregister_pusher, "tablet", "", "t4")};
    auto lost_ch = changes_after(lost);
    REQUIRE_FALSE(append_wait(*log, lost, &no_calls, &lost_ch).has_value());
    fe.arm(storage::wal_fault::none);
    std::vector<engine::event> next{make_batch(3, 1)};
    REQUIRE(append_wait(*log, next).has_value());  // reopens, scrubs
    // The lost batch was replayed by the reopen and removed again: the scrub really ran.
    CHECK(any_contains(*warnings, "removing 2 unacknowledged events after seq 2"));
  }
  auto log = open_log(tmp.log());
  auto p = log->load_persisted();
  REQUIRE(p.has_value());
  REQUIRE(p->pushers.size() == 2);
  std::map<std::string, engine::pusher> by_device;
  for (auto& pu : p->pushers) by_device[pu.device_id] = pu;
  CHECK(by_device.at("phone").pushkey == "pk-1");
  CHECK(by_device.at("phone").since == 1);
  CHECK(by_device.at("tablet").pushkey == "pk-2");
  CHECK(p->calls.empty());  // a registration is not read as a call

  auto st = storage::load_state(*log);
  REQUIRE(st.has_value());
  CHECK(st->table.pushers().size() == 2);
  CHECK(st->table.pushers().find("alice", "phone")->pushkey == "pk-1");
  auto v = log->verify();
  CHECK_MESSAGE(v.ok, v.problem);
}

TEST_CASE("push registrations: events written without their state are folded and persisted at start-up") {
  temp_dir tmp;
  {
    auto log = open_log(tmp.log());
    std::vector<engine::event> b{pusher_event(1, engine::action::register_pusher, "phone", "pk-1", "t1"),
                                 pusher_event(2, engine::action::register_pusher, "tablet", "pk-2", "t2"),
                                 pusher_event(3, engine::action::unregister_pusher, "phone", "", "t3")};
    REQUIRE(append_wait(*log, b).has_value());  // events only: the state stays behind
    auto st = storage::load_state(*log);
    REQUIRE(st.has_value());
    CHECK(st->folded_events == 3);
    REQUIRE(st->table.pushers().size() == 1);
    CHECK(st->table.pushers().find("alice", "tablet"));
  }
  auto log = open_log(tmp.log());
  auto p = log->load_persisted();
  REQUIRE(p.has_value());
  CHECK(p->seq == 3);
  REQUIRE(p->pushers.size() == 1);
  CHECK(p->pushers[0].device_id == "tablet");
  CHECK(p->pushers[0].since == 2);
}
