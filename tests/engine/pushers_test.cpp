// Push registrations (contract §13): decide_pusher's every outcome, the directory's fold
// and indexes, the record formats, and the reactor: registrations persisted with their
// batch, expired ones removed by the engine.
#include <doctest/doctest.h>

#include "engine/codec.hpp"
#include "engine/notify.hpp"
#include "engine/pushers.hpp"
#include "reactor_harness.hpp"

using namespace reactor_test;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;

pusher wanted(std::string pushkey = "pk-1", epoch_ms expires = t0 + 3'600'000) {
  pusher p;
  p.url = "https://push.example.com/_matrix/push/v1/notify";
  p.app_id = "com.example.phone";
  p.pushkey = std::move(pushkey);
  p.data = R"({"format":"event_id_only"})";
  p.expires_at = expires;
  return p;
}

command reg(std::string sub, std::string device, pusher p = wanted(), std::vector<std::string> numbers = {"14250000001"}) {
  command c;
  c.act = action::register_pusher;
  c.who = actor{std::move(sub), std::move(device), std::move(numbers), false, ""};
  c.push = std::move(p);
  c.method = "POST";
  c.path = "/pushers";
  return c;
}

command unreg(std::string sub, std::string device, std::string target_device) {
  command c;
  c.act = action::unregister_pusher;
  c.who = actor{sub, std::move(device), {"14250000001"}, false, ""};
  c.push.emplace();
  c.push->sub = std::move(sub);
  c.push->device_id = std::move(target_device);
  c.method = "DELETE";
  c.path = "/pushers/" + c.push->device_id;
  return c;
}

command engine_removal(std::string sub, std::string device, std::string_view why, std::string pushkey = {}) {
  command c;
  c.act = action::unregister_pusher;
  c.by_engine = true;
  c.push.emplace();
  c.push->sub = std::move(sub);
  c.push->device_id = std::move(device);
  c.push->pushkey = std::move(pushkey);
  c.reason = std::string(why);
  return c;
}

// Decides and, when accepted, folds (numbered from 1).
event step(pusher_directory& dir, const command& c, epoch_ms now = t0) {
  static event_seq seq = 0;
  event e = decide_pusher(dir, c, now);
  e.seq = ++seq;
  dir.apply(e);
  return e;
}

}  // namespace

TEST_CASE("decide_pusher: registering the token's device, replacing it, the per-subject cap, bad input") {
  pusher_directory dir;
  auto e = step(dir, reg("alice", "phone"));
  REQUIRE(e.accepted());
  CHECK_FALSE(e.noop);
  REQUIRE(e.push.has_value());
  CHECK(e.push->sub == "alice");
  CHECK(e.push->device_id == "phone");
  CHECK(e.push->msisdns == std::vector<std::string>{"14250000001"});
  CHECK(e.actor_role == role::stranger);
  REQUIRE(dir.find("alice", "phone"));
  CHECK(dir.find("alice", "phone")->since == e.seq);
  CHECK_FALSE(derive_notification(e).has_value());  // pusher events notify nobody

  // The same device again: replaced, not counted twice.
  e = step(dir, reg("alice", "phone", wanted("pk-2"), {"14250000001", "14250000009"}));
  REQUIRE(e.accepted());
  CHECK(dir.count("alice") == 1);
  CHECK(dir.find("alice", "phone")->pushkey == "pk-2");
  CHECK(dir.for_number("14250000009").size() == 1);

  // Up to the cap (8 by default) of other devices; the 9th device is refused, a known one not.
  for (int i = 2; i <= 8; ++i) REQUIRE(step(dir, reg("alice", "dev-" + std::to_string(i))).accepted());
  CHECK(dir.count("alice") == 8);
  e = step(dir, reg("alice", "dev-9"));
  CHECK(e.rejected == reason_code::too_many_pushers);
  CHECK(dir.count("alice") == 8);
  CHECK(step(dir, reg("alice", "dev-5", wanted("pk-5"))).accepted());
  CHECK(step(dir, reg("bob", "dev-1")).accepted());  // another subject has its own cap

  pusher_limits off;
  off.max_per_sub = 0;
  CHECK(decide_pusher(dir, reg("alice", "dev-10"), t0, off).accepted());

  // No device in the token: 403. Sizes: 400.
  CHECK(step(dir, reg("carol", "")).rejected == reason_code::forbidden);
  CHECK(step(dir, reg("carol", "d", wanted(std::string(513, 'k')))).rejected == reason_code::invalid_field);
  CHECK(step(dir, reg("carol", "d", wanted(""))).rejected == reason_code::invalid_field);
  pusher big = wanted();
  big.data = "{\"x\":\"" + std::string(4100, 'x') + "\"}";
  CHECK(step(dir, reg("carol", "d", big)).rejected == reason_code::invalid_field);
  command bad = reg("carol", "d");
  bad.input_error = reason_code::invalid_json;
  CHECK(step(dir, bad).rejected == reason_code::invalid_json);
  CHECK(dir.count("carol") == 0);
}

TEST_CASE("decide_pusher: removing one's own device, not another's; an absent one is a noop") {
  pusher_directory dir;
  REQUIRE(step(dir, reg("alice", "phone")).accepted());
  REQUIRE(step(dir, reg("alice", "tablet")).accepted());
  CHECK(step(dir, unreg("alice", "phone", "tablet")).rejected == reason_code::forbidden);
  CHECK(dir.find("alice", "tablet"));
  auto e = step(dir, unreg("alice", "phone", "phone"));
  CHECK(e.accepted());
  CHECK_FALSE(e.noop);
  CHECK_FALSE(dir.find("alice", "phone"));
  CHECK(dir.count("alice") == 1);
  e = step(dir, unreg("alice", "phone", "phone"));
  CHECK(e.accepted());
  CHECK(e.noop);
}

TEST_CASE("decide_pusher: the engine removes an expired registration, or a rejected pushkey still registered") {
  pusher_directory dir;
  REQUIRE(step(dir, reg("alice", "phone", wanted("pk-1", t0 + 1000))).accepted());
  CHECK(dir.expired(t0 + 999, 10).empty());
  REQUIRE(dir.expired(t0 + 1000, 10).size() == 1);
  // Not yet expired: the removal is refused (the reactor drops it unwritten).
  CHECK(step(dir, engine_removal("alice", "phone", pusher_expired_reason), t0 + 999).rejected ==
        reason_code::call_not_found);
  auto e = step(dir, engine_removal("alice", "phone", pusher_expired_reason), t0 + 1000);
  CHECK(e.accepted());
  CHECK(e.actor_role == role::engine);
  CHECK(e.msisdn == "14250000001");
  CHECK(*e.reason == "expired");
  CHECK_FALSE(dir.find("alice", "phone"));
  CHECK(dir.expired(t0 + 5000, 10).empty());

  // A rejected pushkey: only while it is still the registered one.
  REQUIRE(step(dir, reg("alice", "phone", wanted("pk-new"))).accepted());
  CHECK(step(dir, engine_removal("alice", "phone", pusher_rejected_reason, "pk-old")).rejected ==
        reason_code::call_not_found);
  CHECK(dir.find("alice", "phone"));
  CHECK(step(dir, engine_removal("alice", "phone", pusher_rejected_reason, "pk-new")).accepted());
  CHECK_FALSE(dir.find("alice", "phone"));
  // Without a reason the engine removes nothing; a request cannot register as the engine.
  REQUIRE(step(dir, reg("alice", "phone")).accepted());
  CHECK_FALSE(step(dir, engine_removal("alice", "phone", "whim")).accepted());
  command forged = reg("alice", "phone");
  forged.by_engine = true;
  CHECK_FALSE(decide_pusher(dir, forged, t0).accepted());
}

TEST_CASE("pusher records: the event and the persisted state round-trip") {
  pusher_directory dir;
  event e = decide_pusher(dir, reg("alice", "phone", wanted(), {"14250000001", "14250000002"}), t0);
  e.seq = 42;
  auto back = decode_event(encode_event(e));
  REQUIRE(back.has_value());
  REQUIRE(back->push.has_value());
  CHECK(*back->push == *e.push);
  CHECK(back->act == action::register_pusher);
  CHECK(encode_event(*back) == encode_event(e));

  pusher p = *e.push;
  p.since = 42;
  auto q = decode_pusher(encode_pusher(p));
  REQUIRE(q.has_value());
  CHECK(*q == p);
  CHECK_FALSE(decode_pusher("{\"device\":\"x\"}").has_value());  // no subject
  CHECK_FALSE(decode_pusher("not json").has_value());
}

TEST_CASE("reactor: registrations are persisted with their batch; an expired one is removed by the engine") {
  reactor_options o = harness::uncapped();
  harness h(o);
  h.clk.set(t0);
  h.start();
  REQUIRE(h.call(reg("alice", "phone", wanted("pk-1", t0 + 60'000))).code == reason_code::none);
  REQUIRE(h.call(reg("alice", "tablet", wanted("pk-2", t0 + 120'000))).code == reason_code::none);
  CHECK(h.call(unreg("alice", "phone", "tablet")).code == reason_code::forbidden);
  auto persisted = h.store.persisted_pushers();
  REQUIRE(persisted.size() == 2);
  CHECK(persisted.at({"alice", "tablet"}).pushkey == "pk-2");
  CHECK(persisted.at({"alice", "tablet"}).since > 0);

  // The first expires: one engine event removes it, persisted as removed.
  h.clk.set(t0 + 60'000);
  REQUIRE(h.wait_until([&] { return h.store.persisted_pushers().size() == 1; }));
  int removals = 0;
  for (const auto& e : h.store.events())
    if (e.act == action::unregister_pusher && e.accepted() && e.reason == std::string("expired")) ++removals;
  CHECK(removals == 1);
  CHECK(h.store.persisted_pushers().count({"alice", "tablet"}) == 1);

  // The fold of the log agrees with what was persisted.
  call_table replayed;
  for (const auto& e : h.store.events()) replayed.apply(e);
  CHECK(replayed.pushers().size() == 1);
  CHECK(*replayed.pushers().find("alice", "tablet") == h.store.persisted_pushers().at({"alice", "tablet"}));
}
